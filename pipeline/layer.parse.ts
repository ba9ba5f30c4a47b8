import { z } from 'zod';
import { BadInputError } from '../core/errors.ts';
import { asText } from '../core/text.ts';

export const LAYER_KINDS = ['permit', 'building', 'farmland', 'ecological', 'water', 'town', 'grid'] as const;
export type LayerKind = (typeof LAYER_KINDS)[number];

export interface LayerFeature {
  /** 0-based position in the file's `features` array (how errors name it). */
  index: number;
  code: string | null;
  name: string | null;
  districtCode: string | null;
  validFrom: string | null;
  validTo: string | null;
  props: Record<string, unknown>;
  /** GeoJSON geometry (Polygon or MultiPolygon), coordinates in `srid`. */
  geometry: { type: 'Polygon' | 'MultiPolygon'; coordinates: unknown };
}

export interface RejectedFeature {
  index: number;
  code: string | null;
  reason: string;
}

export interface ParsedLayer {
  srid: number;
  features: LayerFeature[];
  rejected: RejectedFeature[];
}

const PROP_ALIASES = {
  code: ['code', 'CODE', 'id', 'ID', 'bh', 'BH', '编号', '代码', 'permit_no', 'xzqdm', 'XZQDM'],
  name: ['name', 'NAME', 'mc', 'MC', '名称', 'xzqmc', 'XZQMC'],
  districtCode: ['district_code', 'DISTRICT_CODE', 'qxdm', 'QXDM', '区县代码'],
  validFrom: ['valid_from', 'VALID_FROM', 'start_date', '有效期起'],
  validTo: ['valid_to', 'VALID_TO', 'end_date', 'expiry', '有效期止'],
} as const;

const DATE = /^\d{4}-\d{2}-\d{2}$/;

/**
 * Parse a reference layer GeoJSON. The CRS is `--srid` if given, else the legacy `crs` member
 * (`urn:ogc:def:crs:EPSG::4548` or `EPSG:4548`), else EPSG:4326 per RFC 7946. Features that cannot
 * be used as they are (not polygonal, empty, non-finite coordinates, bad dates) are returned in
 * `rejected` with the reason; geometric validity (self-intersection) is repaired later in PostGIS.
 */
export function parseLayer(text: string, file: string, sridOverride?: number): ParsedLayer {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new BadInputError('invalid_geojson', `${file}: not valid JSON (${(err as Error).message})`, { file });
  }
  const fc = z
    .object({ type: z.literal('FeatureCollection'), features: z.array(z.unknown()), crs: z.unknown().optional() })
    .safeParse(doc);
  if (!fc.success)
    throw new BadInputError(
      'invalid_geojson',
      `${file}: expected a GeoJSON FeatureCollection with a "features" array`,
      { file },
    );
  const srid = sridOverride ?? sridFromCrsMember(fc.data.crs, file) ?? 4326;
  const features: LayerFeature[] = [];
  const rejected: RejectedFeature[] = [];
  for (const [index, raw] of fc.data.features.entries()) {
    const f = raw as {
      type?: unknown;
      properties?: Record<string, unknown> | null;
      geometry?: { type?: string; coordinates?: unknown } | null;
    };
    const props = f?.properties && typeof f.properties === 'object' ? f.properties : {};
    const code = pick(props, PROP_ALIASES.code);
    const reject = (reason: string) => void rejected.push({ index, code, reason });
    if (!f || f.type !== 'Feature') {
      reject('not a GeoJSON Feature');
      continue;
    }
    const g = f.geometry;
    if (!g) {
      reject('geometry is null');
      continue;
    }
    if (g.type !== 'Polygon' && g.type !== 'MultiPolygon') {
      reject(`geometry type ${g.type ?? 'missing'} is not Polygon or MultiPolygon`);
      continue;
    }
    const coordProblem = checkCoordinates(g.type, g.coordinates);
    if (coordProblem) {
      reject(coordProblem);
      continue;
    }
    const validFrom = pick(props, PROP_ALIASES.validFrom);
    const validTo = pick(props, PROP_ALIASES.validTo);
    const notDate = (
      [
        ['valid_from', validFrom],
        ['valid_to', validTo],
      ] as const
    ).find(([, v]) => v !== null && (!DATE.test(v) || Number.isNaN(Date.parse(v))));
    if (notDate) {
      reject(`${notDate[0]} "${notDate[1]}" is not a date (YYYY-MM-DD)`);
      continue;
    }
    if (validFrom && validTo && validFrom > validTo) {
      reject(`valid_from ${validFrom} is after valid_to ${validTo}`);
      continue;
    }
    features.push({
      index,
      code,
      name: pick(props, PROP_ALIASES.name),
      districtCode: pick(props, PROP_ALIASES.districtCode),
      validFrom,
      validTo,
      props,
      geometry: { type: g.type, coordinates: g.coordinates },
    });
  }
  return { srid, features, rejected };
}

function pick(props: Record<string, unknown>, keys: readonly string[]): string | null {
  for (const k of keys) {
    const v = props[k];
    const text = asText(v).trim();
    if (text !== '') return text;
  }
  return null;
}

function sridFromCrsMember(crs: unknown, file: string): number | null {
  if (!crs) return null;
  const name = (crs as { properties?: { name?: unknown } })?.properties?.name;
  const m = typeof name === 'string' ? (/EPSG:{1,2}(\d+)$/i.exec(name) ?? /crs84$/i.exec(name)) : null;
  if (!m)
    throw new BadInputError(
      'unknown_crs',
      `${file}: cannot read the "crs" member ${JSON.stringify(crs)}; pass --srid`,
      { file },
    );
  return m[1] ? Number(m[1]) : 4326;
}

function checkCoordinates(type: 'Polygon' | 'MultiPolygon', coords: unknown): string | null {
  const polys = type === 'Polygon' ? [coords] : coords;
  if (!Array.isArray(polys) || polys.length === 0) return 'geometry is empty';
  for (const poly of polys) {
    if (!Array.isArray(poly) || poly.length === 0) return 'geometry has an empty polygon';
    for (const ring of poly) {
      if (!Array.isArray(ring) || ring.length < 4)
        return `ring with ${Array.isArray(ring) ? ring.length : 0} positions (a closed ring needs at least 4)`;
      for (const p of ring) {
        if (!Array.isArray(p) || p.length < 2 || !Number.isFinite(p[0]) || !Number.isFinite(p[1]))
          return `coordinate ${JSON.stringify(p)} is not a pair of finite numbers`;
      }
    }
  }
  return null;
}

/**
 * Features whose coordinates cannot be in the declared CRS: degrees-sized numbers in a projected
 * CRS (lon/lat declared as EPSG:4548, say), or values beyond ±180/±90 in a geographic one. Such a
 * layer would land hundreds of kilometres off, so the feature is rejected with the hint.
 */
export function implausibleForSrid(features: LayerFeature[], srid: number, geographic: boolean): RejectedFeature[] {
  const out: RejectedFeature[] = [];
  for (const f of features) {
    const polys = (f.geometry.type === 'Polygon' ? [f.geometry.coordinates] : f.geometry.coordinates) as number[][][][];
    const pts = polys.flat(1).flat(1);
    const looksDegrees = pts.every(([x, y]) => Math.abs(x) <= 180 && Math.abs(y) <= 90);
    if (geographic && !looksDegrees)
      out.push({
        index: f.index,
        code: f.code,
        reason: `coordinates such as [${pts[0].join(', ')}] are not degrees, but EPSG:${srid} is geographic; wrong SRID? pass --srid with the layer's projected CRS`,
      });
    if (!geographic && looksDegrees)
      out.push({
        index: f.index,
        code: f.code,
        reason: `coordinates such as [${pts[0].join(', ')}] look like degrees, but EPSG:${srid} is projected; wrong SRID? pass --srid 4326 (or 4490)`,
      });
  }
  return out;
}

/** Text of a layer file: UTF-8 (BOM allowed), else a clear refusal — GBK files must be converted, not guessed. */
export function decodeLayerText(bytes: Uint8Array, file: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    const lossy = new TextDecoder('utf-8').decode(bytes);
    const at = new TextEncoder().encode(lossy.slice(0, Math.max(0, lossy.indexOf('\uFFFD')))).length;
    throw new BadInputError(
      'not_utf8',
      `${file}: not UTF-8 text (first invalid byte near offset ${at}); GeoJSON must be UTF-8 — convert it, e.g. iconv -f GBK -t UTF-8`,
      { file, offset: at },
    );
  }
}
