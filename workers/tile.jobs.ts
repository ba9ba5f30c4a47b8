import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Knex } from 'knex';
import type { Config } from '../config/env.ts';
import type { ChangeModel } from '../pipeline/change.model.ts';
import { detectTile } from '../pipeline/detect.tile.ts';
import { GeoTiffSource } from '../pipeline/geotiff.source.ts';
import { StageTimer, type Logger } from '../pipeline/log.ts';
import type { BaselineTile } from '../pipeline/pair.align.ts';
import type { TileSource } from '../pipeline/raster.source.ts';
import { vectorizeRaster } from '../pipeline/vectorize.ts';
import { batchTile, batchTiles, getBatch, runDiff, setBatchStatus, updateTile, type BatchSummary } from '../store/batch.ts';
import { imageryByIds } from '../store/imagery.ts';
import { BadInputError } from '../pipeline/errors.ts';
import { faultPause } from './fault.ts';

export interface JobContext {
  db: Knex;
  config: Config;
  model: ChangeModel;
  log: Logger;
}

/** Where the detect stage leaves a tile's probability raster for the vectorize stage. */
export function probabilityPath(config: Config, batchId: number, imageryId: number): string {
  return join(config.dataDir, 'work', `batch-${batchId}`, `tile-${imageryId}.prob.f32`);
}

/** Smallest piece kept per tile (m²): specks below this are noise; seam pieces above it are kept for merging. */
const TILE_PIECE_MIN_M2 = 2;

export async function detectJob(ctx: JobContext, batchId: number, imageryId: number, progress?: (pct: number) => void): Promise<{ windows: number; ms: Record<string, number> }> {
  const timer = new StageTimer();
  const tile = await batchTile(ctx.db, batchId, imageryId);
  if (!tile) throw new Error(`batch ${batchId} has no tile for imagery ${imageryId}`);
  if (tile.status === 'failed') return { windows: 0, ms: {} };
  await setBatchStatus(ctx.db, batchId, 'running');
  const [current] = await imageryByIds(ctx.db, [imageryId]);
  ctx.log.info('Tile:DetectStarted', { batchId, imageryId, pid: process.pid });
  const baselines = await imageryByIds(ctx.db, tile.baseline_ids);
  const opened: TileSource[] = [];
  try {
    const after = await timer.time('read', () => GeoTiffSource.open(current.path));
    opened.push(after);
    const baseSources: BaselineTile[] = [];
    for (const b of baselines) {
      const s = await timer.time('read', () => GeoTiffSource.open(b.path));
      opened.push(s);
      baseSources.push({ source: s, stretch: b.stretch });
    }
    const result = await timer.time('infer', () => detectTile({ after, afterStretch: current.stretch, baselines: baseSources, model: ctx.model, onProgress: (d, t) => progress?.(Math.round((100 * d) / t)) }));
    if (!result.valid.some((v) => v === 1)) {
      throw new BadInputError('all_nodata', `${current.path}: no pixel has data in both months (all nodata, NaN, or outside the baseline)`, { file: current.path });
    }
    await faultPause(ctx.config, 'detect');
    const out = probabilityPath(ctx.config, batchId, imageryId);
    mkdirSync(dirname(out), { recursive: true });
    await timer.time('write', () => {
      // Write then rename: a killed worker never leaves a half-written raster behind.
      writeFileSync(out + '.tmp', Buffer.from(result.probability.buffer, result.probability.byteOffset, result.probability.byteLength));
      renameSync(out + '.tmp', out);
    });
    await updateTile(ctx.db, batchId, imageryId, { status: 'detected', windows: result.windows, timings: timer.ms });
    ctx.log.info('Tile:Detected', { batchId, imageryId, path: current.path, windows: result.windows, ...prefixed(timer.ms) });
    return { windows: result.windows, ms: timer.ms };
  } finally {
    for (const s of opened) await s.close();
  }
}

export async function vectorizeJob(ctx: JobContext, batchId: number, imageryId: number): Promise<{ polygons: number }> {
  const timer = new StageTimer();
  const tile = await batchTile(ctx.db, batchId, imageryId);
  if (!tile || tile.status === 'failed') return { polygons: 0 };
  ctx.log.info('Tile:VectorizeStarted', { batchId, imageryId, pid: process.pid });
  const batch = await getBatch(ctx.db, batchId);
  const threshold = Number(batch.params.threshold ?? ctx.model.manifest.defaultThreshold);
  const meta = await ctx.db('imagery').where({ id: imageryId }).first('path', 'width_px', 'height_px', 'geotransform', 'srid');
  const widthPx = Number(meta.width_px), heightPx = Number(meta.height_px);
  const buf = readFileSync(probabilityPath(ctx.config, batchId, imageryId));
  const prob = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  if (prob.length !== widthPx * heightPx) throw new Error(`${meta.path}: probability raster has ${prob.length} values, expected ${widthPx}×${heightPx}`);
  const gt = (meta.geotransform as number[]).map(Number) as unknown as [number, number, number, number, number, number];
  const features = await timer.time('vectorize', () => vectorizeRaster(prob, widthPx, heightPx, gt, { threshold, minAreaM2: TILE_PIECE_MIN_M2 }));
  await timer.time('store', () => ctx.db.transaction(async (trx) => {
    await trx('change_polygon').where({ batch_id: batchId, imagery_id: imageryId }).delete();
    const rows = features.map((f, i) => ({
      batch_id: batchId, imagery_id: imageryId, seq: i + 1,
      geom: trx.raw('ST_Multi(ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON(?), ?), (select value::int from setting where key = ?)))', [JSON.stringify(f.geometry), Number(meta.srid), 'storage_srid']),
      area_m2: f.properties.area_m2, pixel_count: f.properties.pixel_count, mean_prob: f.properties.mean_probability,
    }));
    for (let i = 0; i < rows.length; i += 200) await trx('change_polygon').insert(rows.slice(i, i + 200));
    await faultPause(ctx.config, 'vectorize');
    await updateTile(trx as unknown as Knex, batchId, imageryId, { status: 'vectorized', polygons: features.length, timings: timer.ms });
  }));
  ctx.log.info('Tile:Vectorized', { batchId, imageryId, path: meta.path, polygons: features.length, ...prefixed(timer.ms) });
  return { polygons: features.length };
}

export async function diffJob(ctx: JobContext, batchId: number): Promise<BatchSummary> {
  const t0 = performance.now();
  ctx.log.info('Batch:DiffStarted', { batchId, pid: process.pid });
  // Tiles whose jobs never reported (e.g. removed from Redis) are failed, not silently skipped.
  const tiles = await batchTiles(ctx.db, batchId);
  for (const t of tiles.filter((t) => t.status !== 'vectorized' && t.status !== 'failed')) {
    await updateTile(ctx.db, batchId, t.imagery_id, { status: 'failed', error_code: 'incomplete', error_message: `${t.path}: tile did not finish (${t.status}) before the batch was diffed` });
  }
  const summary = await runDiff(ctx.db, ctx.config, batchId, 'batch', () => faultPause(ctx.config, 'diff'));
  ctx.log.info('Batch:Completed', { batchId, status: summary.status, tiles: summary.tiles.total, failed: summary.tiles.failed, patchesNew: summary.patches.new, redetected: summary.patches.redetected, ms: Math.round(performance.now() - t0) });
  return summary;
}

function prefixed(ms: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(ms).map(([k, v]) => [`${k}Ms`, v]));
}
