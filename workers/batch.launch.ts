import { FlowProducer } from 'bullmq';
import type { Db } from '../store/db.ts';
import type { Config } from '../config/env.ts';
import type { ModelManifest } from '../pipeline/io/model.manifest.ts';
import { BadInputError, ConflictError, TubanError } from '../core/errors.ts';
import {
  batchTiles,
  createBatch,
  getBatch,
  previousMonth,
  reopenFailedTiles,
  type BatchParams,
  type BatchRow,
  type BatchTileRow,
} from '../store/batch.ts';
import { batchParts, ensureParts, partPxOf } from '../store/batch.parts.ts';
import { batchFlow, flowKey } from './batch.flow.ts';
import { redisConnection } from './queues.ts';
import { checkMonth } from '../core/month.ts';

export interface LaunchResult {
  batch: BatchRow;
  tiles: BatchTileRow[];
}

/** Create the batch rows and enqueue its flow. Tiles already failed (no baseline) get no jobs. */
export async function launchBatch(
  db: Db,
  config: Config,
  manifest: ModelManifest,
  month: string,
  baselineMonth?: string,
  threshold?: number,
  regularise?: boolean,
): Promise<LaunchResult> {
  checkMonth(month, '--month');
  const base = baselineMonth ?? previousMonth(month);
  // a baseline is the month before the change: the same month or a later one compares nothing new
  if (base >= month)
    throw new BadInputError('bad_baseline', `--baseline ${base} is not earlier than --month ${month}`, {
      field: 'baseline',
      month,
      baseline: base,
    });
  const { batch, tiles } = await createBatch(db, {
    month,
    baselineMonth: base,
    modelName: manifest.name,
    modelVersion: manifest.version,
    params: batchParams(config, manifest, threshold, regularise),
  });
  await enqueueFlow(
    db,
    config,
    batch.id,
    tiles.filter((t) => t.status === 'queued').map((t) => t.imagery_id),
    0,
  );
  return { batch, tiles };
}

/**
 * 回头看's thresholds on the disappearance score (pipeline/lookback.judge.ts), unless the environment
 * sets them: chosen on scripts/bench-followup.ts (see the README, How a batch runs).
 */
const LOOKBACK_DEFAULTS = { goneAt: 0.6, standingAt: 0.4 } as const;

/**
 * Everything the batch's result depends on beyond its imagery and model, settled when it is launched
 * and kept with it (the diff and the look-back read them from there, so a batch re-run after a change
 * of settings gives what it gave the first time).
 */
export function batchParams(
  config: Config,
  manifest: ModelManifest,
  threshold?: number,
  regularise?: boolean,
): Required<Omit<BatchParams, 'retryRound'>> {
  const minMeanProb = config.TUBAN_MIN_MEAN_PROB ?? manifest.minMeanProbability ?? 0;
  const byRelation = manifest.minMeanProbabilityByRelation;
  return {
    threshold: threshold ?? config.TUBAN_THRESHOLD ?? manifest.defaultThreshold,
    minAreaM2: config.TUBAN_MIN_AREA_M2,
    minMeanProb,
    simplifyM: config.TUBAN_SIMPLIFY_M,
    legalBufferM: config.TUBAN_LEGAL_BUFFER_M,
    partPx: config.TUBAN_PART_PX,
    regularise: regularise ?? config.TUBAN_REGULARISE,
    regulariseMaxChange: config.TUBAN_REGULARISE_MAX_CHANGE,
    buildingPolicy: config.TUBAN_BUILDING_POLICY,
    onBuildingShare: config.TUBAN_ON_BUILDING_SHARE,
    buildingTouchM: config.TUBAN_BUILDING_TOUCH_M,
    minMeanProbByRelation: {
      extension: config.TUBAN_MIN_MEAN_PROB_EXTENSION ?? byRelation?.extension ?? minMeanProb,
      on_building: config.TUBAN_MIN_MEAN_PROB_ON_BUILDING ?? byRelation?.on_building ?? minMeanProb,
    },
    lookback: {
      months: config.TUBAN_LOOKBACK_MONTHS,
      goneAt: config.TUBAN_LOOKBACK_GONE_AT ?? LOOKBACK_DEFAULTS.goneAt,
      standingAt: config.TUBAN_LOOKBACK_STANDING_AT ?? LOOKBACK_DEFAULTS.standingAt,
    },
  };
}

/** Enqueue the unfinished parts of these tiles (parts are created first where missing). */
async function enqueueFlow(
  db: Db,
  config: Config,
  batchId: number,
  imageryIds: number[],
  round: number,
): Promise<void> {
  const instance = await db('setting').where({ key: 'instance_id' }).first();
  const batch = await getBatch(db, batchId);
  await ensureParts(db, batchId, imageryIds, partPxOf(batch.params));
  const parts = (await batchParts(db, batchId, { imageryIds, unfinished: true })).map((p) => ({
    imageryId: p.imagery_id,
    part: p.part,
  }));
  const connection = redisConnection(config);
  const flows = new FlowProducer({ connection, prefix: config.TUBAN_QUEUE_PREFIX });
  try {
    await flows.add(
      batchFlow(flowKey(instance.value, batchId, round), batchId, parts, config.TUBAN_QUEUE_PREFIX, {
        attempts: config.TUBAN_JOB_ATTEMPTS,
        backoffMs: 2000,
      }),
    );
  } finally {
    await flows.close();
    connection.disconnect();
  }
}

/**
 * Re-run only the failed tiles of a finished batch. Their baselines are looked up again (one
 * may have been registered since); the diff then runs over the whole batch again, and what the
 * first run already emitted is matched, not duplicated.
 */
export async function retryFailedTiles(
  db: Db,
  config: Config,
  batchId: number,
): Promise<{ retried: BatchTileRow[]; stillFailed: BatchTileRow[] }> {
  const { retried, stillFailed, round } = await reopenFailedTiles(db, batchId);
  if (retried.length)
    await enqueueFlow(
      db,
      config,
      batchId,
      retried.map((t) => t.imagery_id),
      round,
    );
  return { retried, stillFailed };
}

export interface BatchProgress {
  /** Scenes (tiles): how many, and how far. */
  total: number;
  vectorized: number;
  failed: number;
  /** Parts of all scenes (each scene is cut into parts): how many, and how many are vectorized or failed. */
  parts: { total: number; done: number };
  status: string;
}

async function batchProgress(db: Db, batchId: number): Promise<BatchProgress> {
  const [batch, tiles, parts] = await Promise.all([
    getBatch(db, batchId),
    batchTiles(db, batchId),
    db('batch_part')
      .where({ batch_id: batchId })
      .first(
        db.raw('count(*)::int as total'),
        db.raw("(count(*) filter (where status in ('vectorized', 'failed')))::int as done"),
      ),
  ]);
  return {
    total: tiles.length,
    vectorized: tiles.filter((t) => t.status === 'vectorized').length,
    failed: tiles.filter((t) => t.status === 'failed').length,
    parts: { total: Number(parts?.total ?? 0), done: Number(parts?.done ?? 0) },
    status: batch.status,
  };
}

/**
 * Polls until the batch has finished, reporting progress; returns the finished batch row. `wake`
 * cuts a poll's wait short: workers in this process call it when a diff job ends, so the wait
 * ends with the batch and not up to a poll later.
 */
export async function waitForBatch(
  db: Db,
  batchId: number,
  onProgress: (p: BatchProgress) => void,
  opts: { pollMs?: number; timeoutMs?: number; wake?: (listener: () => void) => () => void } = {},
): Promise<BatchRow> {
  const t0 = Date.now();
  for (;;) {
    let p: BatchProgress;
    try {
      p = await batchProgress(db, batchId);
    } catch (err) {
      // The database may be restarting: keep waiting, and give up only at the timeout. Our own
      // errors (no such batch, …) are not about the connection and end the wait at once.
      if (err instanceof TubanError || (opts.timeoutMs && Date.now() - t0 > opts.timeoutMs)) throw err;
      await new Promise((r) => setTimeout(r, 1000));
      continue;
    }
    onProgress(p);
    if (['completed', 'completed_with_failures', 'failed'].includes(p.status)) return getBatch(db, batchId);
    if (opts.timeoutMs && Date.now() - t0 > opts.timeoutMs)
      throw new Error(
        `batch ${batchId} did not finish within ${opts.timeoutMs} ms (status ${p.status}); are workers running? ('tuban worker')`,
      );
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, opts.pollMs ?? 500);
      const unsubscribe = opts.wake?.(done);
      function done() {
        clearTimeout(timer);
        unsubscribe?.();
        resolve();
      }
    });
  }
}

/**
 * Enqueue again the unfinished tiles of a batch that is still queued or running, under a new
 * job-id round: for when its jobs were lost (a Redis that restarted without persistence, keys
 * removed by hand). Jobs that do still exist run too; every stage is idempotent, so the outcome
 * is the same.
 */
export async function resumeBatch(db: Db, config: Config, batchId: number): Promise<{ requeued: number }> {
  const batch = await getBatch(db, batchId);
  if (!['queued', 'running'].includes(batch.status))
    throw new ConflictError(
      `batch ${batchId} is ${batch.status}; only a queued or running batch can be resumed (use 'batch retry --failed' for failed tiles)`,
    );
  const tiles = (await batchTiles(db, batchId)).filter((t) => t.status === 'queued');
  const last = Number(batch.params?.retryRound ?? 0);
  const round = last + 1;
  // no tile's output changes on a resume: candidates already made stay this round's (a diff that had
  // written some districts goes on with the next, instead of making its candidates again)
  await db('batch')
    .where({ id: batchId })
    .update({
      params: db.raw("params || jsonb_build_object('retryRound', ?::int)", [round]),
      candidates_round: db.raw('case when candidates_round = ? then ?::int else candidates_round end', [last, round]),
    });
  await enqueueFlow(
    db,
    config,
    batchId,
    tiles.map((t) => t.imagery_id),
    round,
  );
  return { requeued: tiles.length };
}
