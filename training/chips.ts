import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Db } from '../store/db.ts';
import sharp from 'sharp';
import { readChipRgb } from '../export/chip.ts';
import { BadInputError } from '../core/errors.ts';
import { GeoTiffCache } from '../pipeline/io/geotiff.source.ts';
import type { BandStretch } from '../pipeline/raster.normalise.ts';
import { runSql } from '../store/sql.ts';
import { checkMonth } from '../core/month.ts';

type Geom = { type: 'Polygon' | 'MultiPolygon'; coordinates: number[][][] | number[][][][] };
export interface ChipRow {
  path: string;
  stretch: BandStretch | null;
  srid: number;
  gsd_m: number;
  centre: { coordinates: number[] };
  geom: Geom;
  /** The tile's extent in its own CRS (from its geotransform): minX, minY, maxX, maxY. */
  bounds: number[];
}
interface Verified {
  code: string;
  month: string;
  baseline_month: string;
  status: string;
  verification_result: string | null;
  dismiss_reason: string | null;
  label: 'change' | 'no_change';
  area_m2: number;
  source: 'imagery' | 'patrol' | 'complaint';
}

interface TrainingChip {
  name: string;
  code: string;
  month: string;
  baselineMonth: string;
  verdict: string;
  label: 'change' | 'no_change';
  /** imagery: a batch flagged it; patrol or complaint: reported, so the model that ran missed it. */
  source: 'imagery' | 'patrol' | 'complaint';
  srid: number;
  gsdM: number;
  boundsWorld: [number, number, number, number];
  sizePx: [number, number];
  changePixels: number;
  beforeTiles: string[];
  afterTiles: string[];
}

export interface TrainingExport {
  dir: string;
  months: { since: string; until: string };
  /** Set when unjudged ground this far (m) from every patch counted as no change. */
  quietM?: number;
  chips: TrainingChip[];
  skipped: { code: string; reason: string }[];
}

const polygons = (g: Geom): number[][][][] =>
  g.type === 'Polygon' ? [g.coordinates as number[][][]] : (g.coordinates as number[][][][]);

/** The change label of a chip: verified change polygons rasterised on the chip grid (255 inside), crisp edges. */
async function rasteriseLabel(
  geoms: Geom[],
  bounds: [number, number, number, number],
  gsdM: number,
  w: number,
  h: number,
): Promise<Buffer> {
  const [minX, , , maxY] = bounds;
  const toPx = (p: number[]) => `${((p[0] - minX) / gsdM).toFixed(3)},${((maxY - p[1]) / gsdM).toFixed(3)}`;
  const d = geoms
    .flatMap(polygons)
    .map((poly) => poly.map((ring) => `M${ring.map(toPx).join(' L')} Z`).join(' '))
    .join(' ');
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}"><rect width="${w}" height="${h}" fill="black"/>${d ? `<path d="${d}" fill="white" fill-rule="evenodd" shape-rendering="crispEdges"/>` : ''}</svg>`;
  const grey = await sharp(Buffer.from(svg)).greyscale().raw().toBuffer();
  return Buffer.from(grey.map((v) => (v > 127 ? 255 : 0)));
}

/** How far around a verified outline its chip's label counts as known (m): the ground just beside a confirmed building is no change. */
const KNOWN_RING_M = 3;

/** Whether both months' tile extents cover a chip's bounds (checked at 16 × 16 points). */
function chipCovered(box: number[], after: ChipRow[], before: ChipRow[]): boolean {
  const inside = (rows: ChipRow[], x: number, y: number) =>
    rows.some((r) => x >= r.bounds[0] && x <= r.bounds[2] && y >= r.bounds[1] && y <= r.bounds[3]);
  for (let i = 0; i <= 15; i++)
    for (let j = 0; j <= 15; j++) {
      const x = box[0] + ((box[2] - box[0]) * i) / 15;
      const y = box[1] + ((box[3] - box[1]) * j) / 15;
      if (!inside(after, x, y) || !inside(before, x, y)) return false;
    }
  return true;
}

/**
 * The chip's bounds, on the after imagery's pixel grid (read without resampling): centred on the patch,
 * or, where that reaches past the edge of the months' imagery, moved inward into the tiles under the
 * patch's centre (a patch at the edge of the city's coverage, or in a small scene).
 */
export function chipBounds(
  cx: number,
  cy: number,
  px: number,
  gsd: number,
  patch: number[],
  after: ChipRow[],
  before: ChipRow[],
): [number, number, number, number] {
  const under = (rows: ChipRow[]) =>
    rows.find((r) => cx >= r.bounds[0] && cx <= r.bounds[2] && cy >= r.bounds[1] && cy <= r.bounds[3]);
  // the grid of the after tile under the patch (its west and north edges)
  const [gx, gy] = [(under(after) ?? after[0]).bounds[0], (under(after) ?? after[0]).bounds[3]];
  const snap = (v: number, g: number, how: (n: number) => number) => g + how((v - g) / gsd) * gsd;
  const at = (x0: number, y1: number): [number, number, number, number] => [x0, y1 - px * gsd, x0 + px * gsd, y1];
  const half = (px / 2) * gsd;
  const centred = at(snap(cx - half, gx, Math.round), snap(cy + half, gy, Math.round));
  if (chipCovered(centred, after, before)) return centred;
  const [a, b] = [under(after), under(before)];
  if (!a || !b) return centred;
  const lo = [Math.max(a.bounds[0], b.bounds[0]), Math.max(a.bounds[1], b.bounds[1])];
  const hi = [Math.min(a.bounds[2], b.bounds[2]), Math.min(a.bounds[3], b.bounds[3])];
  if (hi[0] - lo[0] < 2 * half || hi[1] - lo[1] < 2 * half) return centred;
  // inward onto the grid: west edge rounded up from the tiles' west, north edge down from their north
  const x0 = Math.min(
    Math.max(snap(cx - half, gx, Math.round), snap(lo[0], gx, Math.ceil)),
    snap(hi[0] - 2 * half, gx, Math.floor),
  );
  const y1 = Math.max(
    Math.min(snap(cy + half, gy, Math.round), snap(hi[1], gy, Math.floor)),
    snap(lo[1] + 2 * half, gy, Math.ceil),
  );
  const moved = at(x0, y1);
  // moved only when it still holds the whole patch, else the centred chip is kept (and skipped for its coverage)
  const holds = moved[0] <= patch[0] && moved[1] <= patch[1] && moved[2] >= patch[2] && moved[3] >= patch[3];
  return holds && chipCovered(moved, after, before) ? moved : centred;
}

/**
 * Before/after chips of verified patches with their verdict as the change label, in the A/ B/ label/
 * layout that `tuban eval` and the training script read. A chip is `sizePx` square (larger when the
 * patch is), centred on the patch (moved inward near the edge of the imagery), on the after imagery's grid. Change patches nearby are labelled too;
 * a false-change or dismissed patch leaves its own area 0. known/ says where the label is known: verified
 * outlines and a ring around them, and, with `quietM`, the ground that far from every patch of the month
 * (no patch flagged or reported there: taken as no change). Chips not fully covered by both months'
 * imagery are skipped with the reason in the manifest.
 */
export async function exportTrainingChips(
  db: Db,
  opts: {
    month: string;
    since?: string;
    outDir: string;
    sizePx?: number;
    minCoverage?: number;
    /** Unjudged ground this far (m) from every patch of its month counts as known no change (0 or unset: never). */
    quietM?: number;
  },
): Promise<TrainingExport> {
  for (const [field, v] of [
    ['--month', opts.month],
    ['--since', opts.since],
  ] as const) {
    if (v !== undefined) checkMonth(v, field);
  }
  const since = opts.since ?? opts.month;
  if (since > opts.month) throw new BadInputError('bad_month', `--since ${since} is after --month ${opts.month}`);
  const size = opts.sizePx ?? 256;
  const minCoverage = opts.minCoverage ?? 0.98;
  const patches = await runSql<Verified>(db, 'training/verified', { month: opts.month, since });
  for (const sub of ['A', 'B', 'label', 'own', 'known']) mkdirSync(join(opts.outDir, sub), { recursive: true });
  const sources = new GeoTiffCache();
  const open = (path: string) => sources.open(path);
  const chips: TrainingChip[] = [];
  const skipped: TrainingExport['skipped'] = [];
  try {
    for (const p of patches) {
      const reach = Math.max(100, Math.sqrt(p.area_m2) * 2 + size);
      const after = await runSql<ChipRow>(db, 'export/chip_tiles', { code: p.code, month: p.month, margin_m: reach });
      const before = await runSql<ChipRow>(db, 'export/chip_tiles', {
        code: p.code,
        month: p.baseline_month,
        margin_m: reach,
      });
      if (!after.length || !before.length) {
        skipped.push({
          code: p.code,
          reason: `no imagery registered for ${!after.length ? p.month : p.baseline_month}`,
        });
        continue;
      }
      const { gsd_m: gsd, srid } = after[0];
      if (before.some((r) => r.srid !== srid)) {
        skipped.push({
          code: p.code,
          reason: `${p.baseline_month} imagery is in EPSG:${before[0].srid}, ${p.month} in EPSG:${srid}`,
        });
        continue;
      }
      const pts = polygons(after[0].geom).flat(2);
      const [cx, cy] = after[0].centre.coordinates;
      const extent = Math.max(...pts.map((q) => Math.max(Math.abs(q[0] - cx), Math.abs(q[1] - cy))));
      const px = Math.max(size, Math.ceil(((extent * 2) / gsd + 32) / 32) * 32);
      const patchBox = [
        Math.min(...pts.map((q) => q[0])),
        Math.min(...pts.map((q) => q[1])),
        Math.max(...pts.map((q) => q[0])),
        Math.max(...pts.map((q) => q[1])),
      ];
      const bounds = chipBounds(cx, cy, px, gsd, patchBox, after, before);
      try {
        const a = await readChipRgb(
          await Promise.all(before.map(async (r) => ({ source: await open(r.path), stretch: r.stretch }))),
          bounds,
          gsd,
        );
        const b = await readChipRgb(
          await Promise.all(after.map(async (r) => ({ source: await open(r.path), stretch: r.stretch }))),
          bounds,
          gsd,
        );
        const covered = (v: Uint8Array) => v.reduce((s, x) => s + x, 0) / v.length;
        const cover = Math.min(covered(a.valid), covered(b.valid));
        if (cover < minCoverage) {
          skipped.push({
            code: p.code,
            reason: `imagery covers ${(cover * 100).toFixed(1)}% of the chip (needs ${(minCoverage * 100).toFixed(0)}%)`,
          });
          continue;
        }
        const [{ geoms }] = await runSql<{ geoms: Geom[] }>(db, 'training/labels', {
          code: p.code,
          reach_m: reach,
          srid,
        });
        const label = await rasteriseLabel(geoms, bounds, gsd, px, px);
        const own = await rasteriseLabel([after[0].geom], bounds, gsd, px, px);
        const [{ geoms: looked }] = await runSql<{ geoms: Geom[] }>(db, 'training/known', {
          code: p.code,
          reach_m: reach,
          ring_m: KNOWN_RING_M,
          quiet_m: opts.quietM ?? 0,
          srid,
        });
        const known = await rasteriseLabel(looked, bounds, gsd, px, px);
        const name = `${p.code}.png`;
        const raw = { raw: { width: px, height: px, channels: 3 as const } };
        await sharp(a.rgb, raw)
          .png()
          .toFile(join(opts.outDir, 'A', name));
        await sharp(b.rgb, raw)
          .png()
          .toFile(join(opts.outDir, 'B', name));
        for (const [sub, mask] of [
          ['label', label],
          ['own', own],
          ['known', known],
        ] as const)
          await sharp(mask, { raw: { width: px, height: px, channels: 1 } })
            .toColourspace('b-w')
            .png()
            .toFile(join(opts.outDir, sub, name));
        chips.push({
          name,
          code: p.code,
          month: p.month,
          baselineMonth: p.baseline_month,
          verdict: p.verification_result ?? `dismissed: ${p.dismiss_reason}`,
          label: p.label,
          source: p.source,
          srid,
          gsdM: gsd,
          boundsWorld: bounds,
          sizePx: [px, px],
          changePixels: label.reduce((s, v) => s + (v ? 1 : 0), 0),
          beforeTiles: before.map((r) => r.path),
          afterTiles: after.map((r) => r.path),
        });
      } catch (err) {
        skipped.push({ code: p.code, reason: (err as Error).message });
      }
    }
  } finally {
    await sources.close();
  }
  const result: TrainingExport = {
    dir: opts.outDir,
    months: { since, until: opts.month },
    ...(opts.quietM ? { quietM: opts.quietM } : {}),
    chips,
    skipped,
  };
  writeFileSync(
    join(opts.outDir, 'manifest.json'),
    JSON.stringify(
      {
        ...result,
        dir: undefined,
        createdAt: new Date().toISOString(),
        layout:
          "A/ before, B/ after, label/ 0 = no change, 255 = verified change, own/ the patch's own outline, known/ 255 where the label is known (verified outlines and a ring around them; with quietM, ground that far from every patch of the month), 0 where nothing was judged",
      },
      null,
      2,
    ),
  );
  return result;
}
