/** What the batch commands do (run, retry, status) and the patch list; setup and tools are in commands.setup.ts and commands.tools.ts. */
import type { Config } from '../config/env.ts';
import type { Logger } from '../core/log.ts';
import { OnnxChangeModel } from '../pipeline/io/model.onnx.ts';
import { getBatch, listPatches, type BatchSummary } from '../store/batch.ts';
import type { Db } from '../store/db.ts';
import { launchBatch, retryFailedTiles, waitForBatch, type BatchProgress } from '../workers/batch.launch.ts';
import { checkRedis } from '../workers/queues.ts';
import { batchModelDir } from '../training/models.ts';
import { startWorkers, type WorkerPool } from '../workers/worker.pool.ts';

/**
 * Launch a batch; with `wait`, follow it to the end. With embedded PGlite (one process only) or
 * `inProcessWorkers`, the workers run inside this process.
 */
export async function cmdBatchRun(
  db: Db,
  config: Config,
  log: Logger,
  opts: {
    month: string;
    baseline?: string;
    wait: boolean;
    inProcessWorkers: boolean;
    threshold?: number;
    regularise?: boolean;
    onProgress?: (p: BatchProgress) => void;
  },
): Promise<{ batchId: number; summary: BatchSummary | null }> {
  await checkRedis(config);
  // the register's running model (tuban model promote), else TUBAN_MODEL_DIR
  const { dir, from } = await batchModelDir(db, config);
  const model = await OnnxChangeModel.load(dir, { intraOpThreads: config.TUBAN_ORT_THREADS });
  log.info('Batch:Model', { model: `${model.manifest.name} ${model.manifest.version}`, from });
  let pool: WorkerPool | undefined;
  try {
    if (opts.inProcessWorkers) pool = startWorkers({ db, config, model, log });
    const { batch, tiles } = await launchBatch(
      db,
      config,
      model.manifest,
      opts.month,
      opts.baseline,
      opts.threshold,
      opts.regularise,
    );
    log.info('Batch:Queued', {
      batchId: batch.id,
      month: batch.month,
      baselineMonth: batch.baseline_month,
      tiles: tiles.length,
      failedAtStart: tiles.filter((t) => t.status === 'failed').length,
    });
    if (!opts.wait) return { batchId: batch.id, summary: null };
    const done = await waitForBatch(db, batch.id, opts.onProgress ?? (() => {}), {
      timeoutMs: pool ? undefined : 6 * 3600_000,
      wake: pool?.onceDiffEnds,
    });
    return { batchId: batch.id, summary: done.summary };
  } finally {
    await pool?.close();
    await model.close();
  }
}

export async function cmdBatchRetry(
  db: Db,
  config: Config,
  log: Logger,
  opts: { batchId: number; wait: boolean; inProcessWorkers: boolean },
): Promise<{ retried: number; stillFailed: string[]; summary: BatchSummary | null }> {
  await checkRedis(config);
  const model = opts.inProcessWorkers
    ? await OnnxChangeModel.load((await batchModelDir(db, config)).dir, { intraOpThreads: config.TUBAN_ORT_THREADS })
    : null;
  const pool = model ? startWorkers({ db, config, model, log }) : undefined;
  try {
    const r = await retryFailedTiles(db, config, opts.batchId);
    log.info('Batch:Retried', { batchId: opts.batchId, retried: r.retried.length, stillFailed: r.stillFailed.length });
    let summary: BatchSummary | null = null;
    if (opts.wait && r.retried.length)
      summary = (
        await waitForBatch(db, opts.batchId, () => {}, {
          timeoutMs: pool ? undefined : 6 * 3600_000,
          wake: pool?.onceDiffEnds,
        })
      ).summary;
    else if (opts.wait) summary = (await getBatch(db, opts.batchId)).summary;
    return { retried: r.retried.length, stillFailed: r.stillFailed.map((t) => t.path), summary };
  } finally {
    await pool?.close();
    await model?.close();
  }
}

export async function cmdBatchStatus(
  db: Db,
  batchId: number,
): Promise<BatchSummary | { batchId: number; status: string }> {
  const b = await getBatch(db, batchId);
  return b.summary ?? { batchId: b.id, status: b.status };
}

export async function cmdPatchesList(db: Db, month: string, town?: string): Promise<Record<string, unknown>[]> {
  return listPatches(db, month, town ?? null);
}
