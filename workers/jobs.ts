import type { Db } from '../store/db.ts';
import type { Config } from '../config/env.ts';
import type { ChangeModel } from '../pipeline/change.model.ts';
import { detectRegion, releaseProbability } from '../pipeline/detect.tile.ts';
import { GeoTiffSource } from '../pipeline/io/geotiff.source.ts';
import { StageTimer, type Logger } from '../core/log.ts';
import { NotFoundError } from '../core/errors.ts';
import type { BaselineTile } from '../pipeline/pair.align.ts';
import type { TileSource } from '../pipeline/raster.source.ts';
import type { GeoTransform } from '../pipeline/geotransform.ts';
import { vectorizeRaster } from '../pipeline/vectorize.ts';
import type { BandStretch } from '../pipeline/raster.normalise.ts';
import {
  batchTiles,
  getBatch,
  setBatchStatus,
  updateTile,
  type BatchParams,
  type BatchSummary,
} from '../store/batch.ts';
import { batchParams } from './batch.launch.ts';
import { lookBack, type LookbackParams } from './lookback.ts';
import { LOOKBACK_METHOD } from '../pipeline/lookback.judge.ts';
import { runDiff, type DiffPoint } from '../store/batch.diff.ts';
import { updatePartAndTile } from '../store/batch.parts.ts';
import { runSql } from '../store/sql.ts';
import { faultPause, type FaultStage } from './fault.ts';

/** The fault-injection stage (TUBAN_FAULT_PAUSE) of each point where the diff can be held. */
const DIFF_FAULT_STAGE: Record<DiffPoint, FaultStage> = { slice: 'candidates', emit: 'emit', commit: 'diff' };

export interface JobContext {
  db: Db;
  config: Config;
  model: ChangeModel;
  log: Logger;
  /** The model a batch ran, when it is not `model` (a model promoted while this worker ran): workers/models.ts. */
  models?: { named(name: string, version: string): Promise<ChangeModel> };
}

/** What a part job reads before it starts (sql/batch/part_job.sql); the part's columns are null when the tile has no such part. */
interface PartJobRow {
  tile_status: string;
  batch_status: string;
  params: Record<string, unknown>;
  model_name: string;
  model_version: string;
  x: number;
  y: number;
  width: number | null;
  height: number;
  path: string;
  /** Size and ETag at registration: a file that has changed since is refused. */
  file_bytes: string | null;
  etag: string | null;
  stretch: BandStretch | null;
  geotransform: number[];
  srid: number;
  baselines: {
    id: number;
    path: string;
    file_bytes: number | null;
    etag: string | null;
    stretch: BandStretch | null;
  }[];
}

/** Smallest piece kept per part (m²): specks below this are noise; seam pieces above it are kept for merging. */
const TILE_PIECE_MIN_M2 = 2;

/**
 * One part (window range) of a tile, start to finish: read the part plus a margin of context from
 * both months, run the model, vectorize the part's probabilities and store its polygons, in one job.
 * Nothing is handed between jobs on disk, so a part costs no raster write and read, and memory is
 * bounded by the part size, whatever the scene size. Polygons and the part's status are committed
 * in one transaction: a worker killed anywhere before that leaves nothing, and the job runs again.
 */
export async function partJob(
  ctx: JobContext,
  batchId: number,
  imageryId: number,
  partNo = 0,
  progress?: (pct: number) => void,
): Promise<{ windows: number; polygons: number; ms: Record<string, number> }> {
  const at = { stage: 'detect' as PartStage };
  try {
    return await runPart(ctx, batchId, imageryId, partNo, at, progress);
  } catch (err) {
    if (err !== null && typeof err === 'object' && !('stage' in err))
      Object.defineProperty(err, 'stage', { value: at.stage, enumerable: false });
    throw err;
  }
}

/** The step of a part job that was running: read and detect, vectorize, or store (polygons and status in one transaction). */
export type PartStage = 'detect' | 'vectorize' | 'store';

/** The step of a part job an error came from (partJob marks what it throws), or undefined for other errors. */
export function partStageOf(err: unknown): PartStage | undefined {
  return err !== null && typeof err === 'object' && 'stage' in err ? (err.stage as PartStage) : undefined;
}

async function runPart(
  ctx: JobContext,
  batchId: number,
  imageryId: number,
  partNo: number,
  at: { stage: PartStage },
  progress?: (pct: number) => void,
): Promise<{ windows: number; polygons: number; ms: Record<string, number> }> {
  const timer = new StageTimer();
  const [job] = await runSql<PartJobRow>(ctx.db, 'batch/part_job', {
    batch_id: batchId,
    imagery_id: imageryId,
    part: partNo,
  });
  // a job that names no tile or part will not find one by trying again: not found, not retried
  if (!job) throw new NotFoundError(`batch ${batchId} has no tile for imagery ${imageryId}`);
  if (job.tile_status === 'failed') return { windows: 0, polygons: 0, ms: {} };
  if (job.width === null) throw new NotFoundError(`batch ${batchId} tile ${imageryId} has no part ${partNo}`);
  const part = { x: job.x, y: job.y, width: job.width, height: job.height };
  if (job.batch_status === 'queued') await setBatchStatus(ctx.db, batchId, 'running');
  // the batch's own model: a worker started before a promotion still runs the older batches' model on them
  const own = ctx.model.manifest;
  const model =
    own.name === job.model_name && own.version === job.model_version
      ? ctx.model
      : ctx.models
        ? await ctx.models.named(job.model_name, job.model_version)
        : ctx.model;
  const threshold = Number(job.params.threshold ?? model.manifest.defaultThreshold);
  ctx.log.info('Part:DetectStarted', { batchId, imageryId, part: partNo, pid: process.pid });
  const opened: TileSource[] = [];
  let detected: Awaited<ReturnType<typeof detectRegion>>;
  const openingPx = Math.round(ctx.config.TUBAN_OPENING_M / ctx.config.TUBAN_GSD_M);
  try {
    const after = await timer.time('read', () =>
      GeoTiffSource.open(job.path, { expect: { bytes: Number(job.file_bytes), etag: job.etag } }),
    );
    opened.push(after);
    const baseSources: BaselineTile[] = [];
    for (const b of job.baselines) {
      const s = await timer.time('read', () =>
        GeoTiffSource.open(b.path, { expect: { bytes: b.file_bytes, etag: b.etag } }),
      );
      opened.push(s);
      baseSources.push({ source: s, stretch: b.stretch });
    }
    // detectRegion adds its own read / infer / blend times to the timer's; the probability comes with
    // a halo of twice the opening radius around the part, so the part's mask opens as the whole scene's would
    detected = await detectRegion({
      haloPx: 2 * openingPx,
      after,
      afterStretch: job.stretch,
      baselines: baseSources,
      model,
      region: part,
      stages: timer,
      onProgress: (d, t) => d < t && progress?.(Math.round((100 * d) / t)), // the job's completion says 100 %
    });
  } finally {
    for (const s of opened) await s.close();
  }
  await faultPause(ctx.config, 'detect');
  ctx.log.info('Part:Detected', { batchId, imageryId, part: partNo, path: job.path, windows: detected.windows });
  const gt = job.geotransform.map(Number) as unknown as GeoTransform;
  const halo = detected.window;
  at.stage = 'vectorize';
  const features = await timer.time('vectorize', () =>
    vectorizeRaster(detected.probability, halo.width, halo.height, gt, {
      threshold,
      minAreaM2: TILE_PIECE_MIN_M2,
      offsetPx: { x: halo.x, y: halo.y },
      core: { x: part.x - halo.x, y: part.y - halo.y, width: part.width, height: part.height },
      interior: detected.interior,
      interiorThreshold: model.manifest.interior?.threshold,
      // the diff's sliver opening, done here on the raster: the diff buffers only what legal footprints cut
      openingPx,
    }),
  );
  releaseProbability(detected);
  at.stage = 'store';
  await ctx.db.transaction(async (trx) => {
    timer.restart();
    const rows = features.map((f, i) => ({
      seq: i + 1,
      geometry: JSON.stringify(f.geometry),
      area_m2: f.properties.area_m2,
      pixel_count: f.properties.pixel_count,
      mean_prob: f.properties.mean_probability,
    }));
    await runSql(trx, 'batch/store_part_polygons', {
      batch_id: batchId,
      imagery_id: imageryId,
      part: partNo,
      srid: job.srid,
      features: JSON.stringify(rows),
    });
    timer.lap('store');
    await faultPause(ctx.config, 'vectorize');
    await updatePartAndTile(trx, batchId, imageryId, partNo, {
      status: 'vectorized',
      windows: detected.windows,
      valid_px: detected.validPx,
      polygons: features.length,
      timings: timer.ms,
    });
  });
  ctx.log.info('Part:Vectorized', {
    batchId,
    imageryId,
    part: partNo,
    path: job.path,
    windows: detected.windows,
    polygons: features.length,
    ...prefixed(timer.ms),
  });
  return { windows: detected.windows, polygons: features.length, ms: timer.ms };
}

export async function diffJob(ctx: JobContext, batchId: number): Promise<BatchSummary> {
  const t0 = performance.now();
  ctx.log.info('Batch:DiffStarted', { batchId, pid: process.pid });
  // Tiles whose jobs never reported (e.g. removed from Redis) are failed, not silently skipped.
  const tiles = await batchTiles(ctx.db, batchId);
  for (const t of tiles.filter((t) => t.status !== 'vectorized' && t.status !== 'failed')) {
    await updateTile(ctx.db, batchId, t.imagery_id, {
      status: 'failed',
      error_code: 'incomplete',
      error_message: `${t.path}: tile did not finish (${t.status}) before the batch was diffed`,
    });
  }
  // 回头看 first (it reads imagery and runs the model, outside the diff's transaction); the diff records it
  const batch = await getBatch(ctx.db, batchId);
  const done = batch.status === 'completed' || batch.status === 'completed_with_failures';
  // a diff taken over after its candidates were committed recorded 回头看 with them: not judged again
  const staged = batch.candidates_round === Number((batch.params as Partial<BatchParams>).retryRound ?? 0);
  const lb =
    done || staged ? null : await lookBack(ctx, batchId, lookbackParams(ctx, batch.params as Partial<BatchParams>));
  const summary = await runDiff(
    ctx.db,
    ctx.config,
    batchId,
    'batch',
    (point) => faultPause(ctx.config, DIFF_FAULT_STAGE[point]),
    lb ? { ...lb, modelName: LOOKBACK_METHOD.name, modelVersion: LOOKBACK_METHOD.version } : undefined,
  );
  ctx.log.info('Batch:Completed', {
    batchId,
    status: summary.status,
    tiles: summary.tiles.total,
    failed: summary.tiles.failed,
    patchesNew: summary.patches.new,
    redetected: summary.patches.redetected,
    ms: Math.round(performance.now() - t0),
  });
  return summary;
}

/** The batch's 回头看 settings; a batch launched before they existed takes today's. */
function lookbackParams(ctx: JobContext, params: Partial<BatchParams>): LookbackParams {
  const now = batchParams(ctx.config, ctx.model.manifest).lookback;
  return { ...now, ...params.lookback };
}

function prefixed(ms: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(ms).map(([k, v]) => [`${k}Ms`, v]));
}
