import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Knex } from 'knex';
import type { Config } from '../config/env.ts';
import type { ChangeModel } from '../pipeline/change.model.ts';
import { detectRegion } from '../pipeline/detect.tile.ts';
import { GeoTiffSource } from '../pipeline/geotiff.source.ts';
import { StageTimer, type Logger } from '../pipeline/log.ts';
import type { BaselineTile } from '../pipeline/pair.align.ts';
import type { TileSource } from '../pipeline/raster.source.ts';
import { quantiseProbability, vectorizeRaster } from '../pipeline/vectorize.ts';
import { batchPart, batchTile, batchTiles, getBatch, runDiff, setBatchStatus, updatePartAndTile, updateTile, type BatchSummary } from '../store/batch.ts';
import { imageryByIds } from '../store/imagery.ts';
import { faultPause } from './fault.ts';

export interface JobContext {
  db: Knex;
  config: Config;
  model: ChangeModel;
  log: Logger;
}

/** Where the detect stage leaves a part's probability raster for the vectorize stage: 16 bits a pixel (quantiseProbability). */
export function probabilityPath(config: Config, batchId: number, imageryId: number, part = 0): string {
  return join(config.dataDir, 'work', `batch-${batchId}`, `tile-${imageryId}-p${part}.prob.u16`);
}

/** Smallest piece kept per part (m²): specks below this are noise; seam pieces above it are kept for merging. */
const TILE_PIECE_MIN_M2 = 2;

/**
 * Detect one part of a tile: read the part (plus a margin of context) from both months, run the
 * model, write the part's probability raster (tmp then rename) and mark the part detected. Memory
 * is bounded by the part size, whatever the scene size.
 */
export async function detectJob(ctx: JobContext, batchId: number, imageryId: number, partNo = 0, progress?: (pct: number) => void): Promise<{ windows: number; ms: Record<string, number> }> {
  const timer = new StageTimer();
  const tile = await batchTile(ctx.db, batchId, imageryId);
  if (!tile) throw new Error(`batch ${batchId} has no tile for imagery ${imageryId}`);
  if (tile.status === 'failed') return { windows: 0, ms: {} };
  const part = await batchPart(ctx.db, batchId, imageryId, partNo);
  if (!part) throw new Error(`batch ${batchId} tile ${imageryId} has no part ${partNo}`);
  await setBatchStatus(ctx.db, batchId, 'running');
  const [current] = await imageryByIds(ctx.db, [imageryId]);
  ctx.log.info('Tile:DetectStarted', { batchId, imageryId, part: partNo, pid: process.pid });
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
    // detectRegion adds its own read / infer / blend times to the timer's
    const stages = timer.ms;
    const result = await detectRegion({
      after, afterStretch: current.stretch, baselines: baseSources, model: ctx.model, region: part, marginPx: Math.max(ctx.model.manifest.overlapPx, 32), stages,
      onProgress: (d, t) => progress?.(Math.round((100 * d) / t)),
    });
    const validPx = result.validPx;
    await faultPause(ctx.config, 'detect');
    const out = probabilityPath(ctx.config, batchId, imageryId, partNo);
    mkdirSync(dirname(out), { recursive: true });
    await timer.time('write', () => {
      // Write then rename: a killed worker never leaves a half-written raster behind.
      // (a name of its own: after a resume the old and the new round's job may both run)
      const tmp = `${out}.${process.pid}.${randomUUID()}.tmp`;
      const q = quantiseProbability(result.probability);
      writeFileSync(tmp, Buffer.from(q.buffer, q.byteOffset, q.byteLength));
      renameSync(tmp, out);
    });
    const ms = timer.ms;
    await ctx.db.transaction((trx) => updatePartAndTile(trx as unknown as Knex, batchId, imageryId, partNo, { status: 'detected', windows: result.windows, valid_px: validPx, timings: ms }));
    ctx.log.info('Tile:Detected', { batchId, imageryId, part: partNo, path: current.path, windows: result.windows, ...prefixed(ms) });
    return { windows: result.windows, ms };
  } finally {
    for (const s of opened) await s.close();
  }
}

export async function vectorizeJob(ctx: JobContext, batchId: number, imageryId: number, partNo = 0): Promise<{ polygons: number }> {
  const timer = new StageTimer();
  const tile = await batchTile(ctx.db, batchId, imageryId);
  if (!tile || tile.status === 'failed') return { polygons: 0 };
  const part = await batchPart(ctx.db, batchId, imageryId, partNo);
  if (!part) throw new Error(`batch ${batchId} tile ${imageryId} has no part ${partNo}`);
  ctx.log.info('Tile:VectorizeStarted', { batchId, imageryId, part: partNo, pid: process.pid });
  const batch = await getBatch(ctx.db, batchId);
  const threshold = Number(batch.params.threshold ?? ctx.model.manifest.defaultThreshold);
  const meta = await ctx.db('imagery').where({ id: imageryId }).first('path', 'geotransform', 'srid');
  const buf = await timer.time('readProb', () => readFileSync(probabilityPath(ctx.config, batchId, imageryId, partNo)));
  const bytes = buf.byteOffset % 2 === 0 ? buf : Buffer.from(buf); // a typed view needs an aligned offset
  const prob = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
  if (prob.length !== part.width * part.height) throw new Error(`${meta.path}: part ${partNo} probability raster has ${prob.length} values, expected ${part.width}×${part.height}`);
  const gt = (meta.geotransform as number[]).map(Number) as unknown as [number, number, number, number, number, number];
  const features = await timer.time('vectorize', () => vectorizeRaster(prob, part.width, part.height, gt, { threshold, minAreaM2: TILE_PIECE_MIN_M2, offsetPx: { x: part.x, y: part.y } }));
  await ctx.db.transaction(async (trx) => {
    const t0 = performance.now();
    await trx('change_polygon').where({ batch_id: batchId, imagery_id: imageryId, part: partNo }).delete();
    const rows = features.map((f, i) => ({
      batch_id: batchId, imagery_id: imageryId, part: partNo, seq: i + 1,
      geom: trx.raw('ST_Multi(ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON(?), ?), (select value::int from setting where key = ?)))', [JSON.stringify(f.geometry), Number(meta.srid), 'storage_srid']),
      area_m2: f.properties.area_m2, pixel_count: f.properties.pixel_count, mean_prob: f.properties.mean_probability,
    }));
    for (let i = 0; i < rows.length; i += 200) await trx('change_polygon').insert(rows.slice(i, i + 200));
    const ms = { ...timer.ms, store: Math.round((performance.now() - t0) * 10) / 10 };
    await faultPause(ctx.config, 'vectorize');
    await updatePartAndTile(trx as unknown as Knex, batchId, imageryId, partNo, { status: 'vectorized', polygons: features.length, timings: ms });
  });
  ctx.log.info('Tile:Vectorized', { batchId, imageryId, part: partNo, path: meta.path, polygons: features.length, ...prefixed(timer.ms) });
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
  const removed = await removeOldWork(ctx.db, ctx.config, batchId);
  if (removed.length) ctx.log.info('Batch:WorkRemoved', { batchIds: removed });
  return summary;
}

/**
 * Removes the probability rasters of other batches that finished more than TUBAN_WORK_KEEP_H hours
 * ago: their diff has consumed them, and a retry of a failed tile detects again. Without this the
 * work folder grows by about 2 GB per 1,000 MP every month. Returns the batches cleaned.
 */
export async function removeOldWork(db: Knex, config: Config, exceptBatchId: number): Promise<number[]> {
  const dir = join(config.dataDir, 'work');
  if (!existsSync(dir)) return [];
  const ids = readdirSync(dir).map((n) => /^batch-(\d+)$/.exec(n)?.[1]).filter((v): v is string => v !== undefined).map(Number).filter((id) => id !== exceptBatchId);
  if (!ids.length) return [];
  const old: number[] = (
    await db('batch').whereIn('id', ids).whereIn('status', ['completed', 'completed_with_failures', 'failed'])
      .andWhere('finished_at', '<', db.raw("now() - make_interval(secs => ?)", [config.TUBAN_WORK_KEEP_H * 3600]))
      .pluck('id')
  ).map(Number);
  for (const id of old) rmSync(join(dir, `batch-${id}`), { recursive: true, force: true });
  return old;
}

function prefixed(ms: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(ms).map(([k, v]) => [`${k}Ms`, v]));
}
