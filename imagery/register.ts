import { createHash } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import type { Db } from '../store/db.ts';
import type { Config } from '../config/env.ts';
import { crsLabel } from '../core/crs.ts';
import { BadInputError, errorCodeOf } from '../core/errors.ts';
import { isRemote, remoteError, remoteSettings, s3Client } from '../pipeline/io/byte.source.ts';
import { GeoTiffSource } from '../pipeline/io/geotiff.source.ts';
import { makePreview } from '../pipeline/io/preview.ts';
import { objectStore } from '../store/objects.ts';
import { gsdMetres, pixelToWorld } from '../pipeline/geotransform.ts';
import { percentileStretch, type BandStretch } from '../pipeline/raster.normalise.ts';
import { axisStarts } from '../pipeline/window.grid.ts';
import { runSql } from '../store/sql.ts';
import { checkMonth } from '../core/month.ts';

export interface RegisteredImage {
  id: number;
  path: string;
  month: string;
  widthPx: number;
  heightPx: number;
  bands: number;
  epsg: number;
  gsdM: number;
  inserted: boolean;
}
export interface RefusedImage {
  path: string;
  code: string;
  reason: string;
}

/**
 * Expand files, folders and URLs into the GeoTIFFs they hold, sorted: a folder or an S3 prefix
 * (`s3://bucket/prefix/`) gives every .tif/.tiff under it; a file or an http(s):// URL is itself.
 */
async function listTiffs(inputs: string[]): Promise<{ paths: string[]; refused: RefusedImage[]; listed: string[] }> {
  const remote: string[] = [];
  const refused: RefusedImage[] = [];
  const listed: string[] = [];
  for (const i of inputs.filter(isRemote))
    try {
      remote.push(...(await listRemote(i)));
      listed.push(i);
    } catch (err) {
      refused.push({ path: i, code: errorCodeOf(err), reason: (err as Error).message });
    }
  return {
    paths: [...listLocalTiffs(inputs.filter((i) => !isRemote(i))), ...[...new Set(remote)].sort()],
    refused,
    listed,
  };
}

const TIFF_NAME = /\.tiff?$/i;

/** An S3 prefix listed (ListObjectsV2, every page), or a single URL. */
async function listRemote(location: string): Promise<string[]> {
  if (!/^s3:\/\//i.test(location) || TIFF_NAME.test(location)) return [location];
  const url = new URL(location);
  const bucket = url.hostname,
    prefix = decodeURIComponent(url.pathname.slice(1));
  const { ListObjectsV2Command } = await import('@aws-sdk/client-s3');
  const client = await s3Client(remoteSettings());
  const out: string[] = [];
  let token: string | undefined;
  try {
    do {
      const page = await client.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const o of page.Contents ?? []) if (o.Key && TIFF_NAME.test(o.Key)) out.push(`s3://${bucket}/${o.Key}`);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  } catch (err) {
    throw remoteError(location, err);
  }
  if (out.length === 0)
    throw new BadInputError('no_imagery', `${location}: no .tif or .tiff objects under this prefix`, {
      file: location,
    });
  return out;
}

function listLocalTiffs(inputs: string[]): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    const st = statSync(p, { throwIfNoEntry: false });
    if (!st) {
      out.push(p); // reported as missing by the register step
      return;
    }
    if (st.isDirectory()) for (const name of readdirSync(p).sort()) walk(join(p, name));
    else if (['.tif', '.tiff'].includes(extname(p).toLowerCase())) out.push(p);
  };
  for (const i of inputs) {
    const st = statSync(i, { throwIfNoEntry: false });
    if (st && !st.isDirectory()) out.push(i);
    else walk(i);
  }
  return [...new Set(out.map((p) => resolve(p)))].sort();
}

/**
 * Register a month's GeoTIFFs: read each header, check CRS and ground sample distance, compute
 * a stretch for >8-bit data, write a low-resolution preview for the web map (one read of the
 * image, pipeline/io/preview.ts), store footprint and metadata. Each refused file is reported
 * with its reason; the others are registered.
 */
export async function registerImagery(
  db: Db,
  config: Config,
  month: string,
  inputs: string[],
  acquiredOn?: string,
): Promise<{ registered: RegisteredImage[]; refused: RefusedImage[] }> {
  checkMonth(month, '--month');
  const date = acquiredOn ?? `${month}-01`;
  const registered: RegisteredImage[] = [];
  const { paths, refused: unlisted, listed } = await listTiffs(inputs);
  // a prefix that lists now is no longer refused (bad credentials, a network failure last time)
  if (listed.length) await db('imagery_refusal').where({ month }).whereIn('path', listed).delete();
  const refused: RefusedImage[] = [];
  const refuse = async (r: RefusedImage) => {
    refused.push(r);
    await db('imagery_refusal')
      .insert({ month, ...r })
      .onConflict(['month', 'path'])
      .merge(['code', 'reason', 'refused_at']);
  };
  for (const r of unlisted) await refuse(r);
  for (const path of paths) {
    try {
      registered.push(await registerOne(db, config, month, path, date));
      await db('imagery_refusal').where({ month, path }).delete(); // repaired since
    } catch (err) {
      await refuse({ path, code: errorCodeOf(err), reason: (err as Error).message });
    }
  }
  return { registered, refused };
}

async function registerOne(
  db: Db,
  config: Config,
  month: string,
  path: string,
  acquiredOn: string,
): Promise<RegisteredImage> {
  const src = await GeoTiffSource.open(path, { maxPixels: config.TUBAN_MAX_IMAGE_MPX * 1e6 });
  try {
    const info = src.info;
    const known = await db.raw('select 1 from spatial_ref_sys where srid = ?', [info.crs.epsg]);
    if (known.rows.length === 0)
      throw new BadInputError(
        'unknown_crs',
        `${path}: ${crsLabel(info.crs)} is not known to PostGIS (spatial_ref_sys), so it cannot be placed`,
        { file: path },
      );
    const gt = info.geoTransform;
    const centre = pixelToWorld(gt, info.widthPx / 2, info.heightPx / 2);
    const gsd = gsdMetres(gt, info.crs.geographic, info.crs.geographic ? centre.y : 0);
    const gsdM = (gsd.x + gsd.y) / 2;
    const off = Math.abs(gsdM - config.TUBAN_GSD_M) / config.TUBAN_GSD_M;
    if (off > config.TUBAN_GSD_TOLERANCE) {
      throw new BadInputError(
        'gsd_mismatch',
        `${path}: ground sample distance ${gsdM.toFixed(3)} m differs from the configured ${config.TUBAN_GSD_M} m by ${(off * 100).toFixed(0)} % (tolerance ${(config.TUBAN_GSD_TOLERANCE * 100).toFixed(0)} %, TUBAN_GSD_TOLERANCE)`,
        { file: path, gsdM },
      );
    }
    if (info.bandCount < 3)
      throw new BadInputError(
        'band_count',
        `${path}: ${info.bandCount} band(s); RGB imagery with at least 3 bands is required`,
        { file: path },
      );
    const stretch = info.sampleType === 'uint8' ? null : await sampleStretch(src);
    // kept where TUBAN_STORAGE_URL says (else under the data folder), so a server on any host draws it
    const preview = await makePreview(src, stretch, gsdM);
    // named by the image and the preview's own bytes: a re-registered image gets a new object, so a map
    // server still reading the old one (by ranged requests pinned to its ETag) is never handed a mix
    const previewPath = preview
      ? await objectStore(config).put(
          `previews/${month}/${createHash('sha256').update(path).digest('hex').slice(0, 20)}-${createHash('sha256').update(preview.bytes).digest('hex').slice(0, 12)}.tif`,
          preview.bytes,
          'image/tiff',
        )
      : null;
    const corners = [
      [0, 0],
      [info.widthPx, 0],
      [info.widthPx, info.heightPx],
      [0, info.heightPx],
      [0, 0],
    ].map(([c, r]) => pixelToWorld(gt, c, r));
    const wkt = `POLYGON((${corners.map((p) => `${p.x} ${p.y}`).join(', ')}))`;
    const [row] = await runSql<{ id: string; inserted: boolean }>(db, 'imagery/upsert', {
      month,
      path,
      acquired_on: acquiredOn,
      file_bytes: src.bytes.size,
      etag: src.bytes.etag,
      width_px: info.widthPx,
      height_px: info.heightPx,
      band_count: info.bandCount,
      sample_type: info.sampleType,
      nodata: info.nodata,
      srid: info.crs.epsg,
      geotransform: `{${gt.join(',')}}`,
      gsd_m: gsdM,
      stretch: stretch ? JSON.stringify(stretch) : null,
      preview_path: previewPath,
      preview_res_m: preview?.resM ?? null,
      footprint_wkt: wkt,
    });
    return {
      id: Number(row.id),
      path,
      month,
      widthPx: info.widthPx,
      heightPx: info.heightPx,
      bands: info.bandCount,
      epsg: info.crs.epsg,
      gsdM,
      inserted: row.inserted,
    };
  } finally {
    await src.close();
  }
}

/** 2–98 % stretch from up to 16 windows of 128 px spread over the image (bounded reads). */
async function sampleStretch(src: GeoTiffSource): Promise<BandStretch> {
  const { widthPx, heightPx } = src.info;
  const size = 128;
  const xs = axisStarts(widthPx, size, 0)
    .filter((_, i, a) => a.length <= 4 || i % Math.ceil(a.length / 4) === 0)
    .slice(0, 4);
  const ys = axisStarts(heightPx, size, 0)
    .filter((_, i, a) => a.length <= 4 || i % Math.ceil(a.length / 4) === 0)
    .slice(0, 4);
  const bands = [0, 1, 2];
  const acc: number[][] = bands.map(() => []);
  for (const y of ys)
    for (const x of xs) {
      const w = await src.readWindow({ x, y, width: Math.min(size, widthPx), height: Math.min(size, heightPx) }, bands);
      w.forEach((b, i) => {
        for (const v of b) acc[i].push(v);
      });
    }
  return percentileStretch(
    acc.map((a) => Float64Array.from(a)),
    src.info.nodata,
  );
}
