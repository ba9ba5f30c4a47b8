import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Knex } from 'knex';
import type { Config } from '../config/env.ts';
import type { ChangeModel } from '../pipeline/change.model.ts';
import { errorCodeOf, errorFate, errorKindOf } from '../pipeline/errors.ts';
import type { Logger } from '../pipeline/log.ts';
import { batchTile, updatePartAndTile } from '../store/batch.ts';
import { sweepOverdue } from '../store/overdue.ts';
import type { WorkflowEnv } from '../store/workflow.ts';
import { QUEUE, redisConnection, type DiffJobData, type TileJobData } from './queues.ts';
import { diffJob, partJob, partStageOf, type JobContext } from './tile.jobs.ts';

export interface WorkerPool {
  workers: Worker[];
  /** Calls `listener` once when this pool's diff worker next ends a job (completed or failed); returns an unsubscribe. */
  onceDiffEnds(listener: () => void): () => void;
  /** Stop taking jobs, let the jobs in hand finish (up to timeoutMs), then close. */
  close(timeoutMs?: number): Promise<void>;
}

/**
 * Starts one BullMQ worker per queue in this process. Errors are sorted by kind: bad input fails
 * the tile at once (UnrecoverableError, no retry); anything else is retried with backoff and the
 * tile is marked failed only when its last attempt fails. Either way the reason lands in
 * batch_tile, where the batch summary reads it.
 */
export function startWorkers(opts: { db: Knex; config: Config; model: ChangeModel; log: Logger; concurrency?: number; workflow?: WorkflowEnv }): WorkerPool {
  const ctx: JobContext = { db: opts.db, config: opts.config, model: opts.model, log: opts.log };
  const concurrency = opts.concurrency ?? opts.config.TUBAN_CONCURRENCY;
  const common = { prefix: opts.config.TUBAN_QUEUE_PREFIX, concurrency, lockDuration: opts.config.TUBAN_LOCK_MS, stalledInterval: opts.config.TUBAN_STALLED_INTERVAL_MS, maxStalledCount: 2 };

  const partHandler = async (job: Job<TileJobData>) => {
    const { batchId, imageryId } = job.data;
    const part = job.data.part ?? 0;
    try {
      return await partJob(ctx, batchId, imageryId, part, (pct) => void job.updateProgress(pct));
    } catch (err) {
      const kind = errorKindOf(err);
      const last = !errorFate[kind].retry || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      const path = (await batchTile(ctx.db, batchId, imageryId))?.path;
      const stage = partStageOf(err);
      ctx.log.warn('Tile:Failed', { batchId, imageryId, part, path, stage, attempt: job.attemptsMade + 1, final: last, code: errorCodeOf(err), message: (err as Error).message });
      if (last) {
        const message = stage ? `${stage}: ${(err as Error).message}` : (err as Error).message;
        await ctx.db.transaction((trx) => updatePartAndTile(trx as unknown as Knex, batchId, imageryId, part, { status: 'failed', error_code: errorCodeOf(err), error_message: message }));
      }
      if (!errorFate[kind].retry) throw new UnrecoverableError((err as Error).message);
      throw err;
    }
  };

  const diffHandler = async (job: Job<DiffJobData>) => {
    try {
      return await diffJob(ctx, job.data.batchId);
    } catch (err) {
      const last = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      ctx.log.error('Batch:DiffFailed', { batchId: job.data.batchId, attempt: job.attemptsMade + 1, final: last, message: (err as Error).message });
      if (last) await ctx.db('batch').where({ id: job.data.batchId }).update({ status: 'failed', summary: JSON.stringify({ batchId: job.data.batchId, status: 'failed', error: (err as Error).message }), finished_at: ctx.db.fn.now() });
      throw err;
    }
  };

  const connections = [redisConnection(opts.config), redisConnection(opts.config), redisConnection(opts.config)];
  const diffWorker = new Worker<DiffJobData>(QUEUE.diff, diffHandler, { ...common, concurrency: 1, connection: connections[1] });
  const workers: Worker[] = [new Worker<TileJobData>(QUEUE.part, partHandler, { ...common, connection: connections[0] }), diffWorker];
  if (opts.workflow) {
    const wf = opts.workflow;
    workers.push(new Worker(QUEUE.deadlines, async () => {
      const r = await sweepOverdue(opts.db, wf);
      opts.log.info('Deadlines:Swept', { today: wf.today(), ...r });
      return r;
    }, { ...common, concurrency: 1, connection: connections[2] }));
  } else connections[2].disconnect();
  for (const w of workers) w.on('error', (err) => opts.log.error('Worker:Error', { queue: w.name, message: err.message }));

  return {
    workers,
    onceDiffEnds(listener) {
      const fire = () => {
        diffWorker.off('completed', fire).off('failed', fire);
        listener();
      };
      diffWorker.on('completed', fire).on('failed', fire);
      return () => void diffWorker.off('completed', fire).off('failed', fire);
    },
    async close(timeoutMs = opts.config.TUBAN_STOP_TIMEOUT_MS) {
      const graceful = Promise.all(workers.map((w) => w.close()));
      const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs).unref());
      if ((await Promise.race([graceful.then(() => 'ok' as const), timer])) === 'timeout') {
        opts.log.warn('Worker:ForceClose', { timeoutMs });
        await Promise.all(workers.map((w) => w.close(true)));
      }
      for (const c of connections) c.disconnect();
    },
  };
}

/** The daily deadline sweep as a BullMQ job scheduler (01:00 city time); upserting it again changes nothing. */
export async function scheduleDeadlineSweep(config: Config): Promise<void> {
  const { Queue } = await import('bullmq');
  const connection = redisConnection(config);
  const q = new Queue(QUEUE.deadlines, { connection, prefix: config.TUBAN_QUEUE_PREFIX });
  try {
    const tz = `Etc/GMT${config.TUBAN_UTC_OFFSET_H >= 0 ? '-' : '+'}${Math.abs(config.TUBAN_UTC_OFFSET_H)}`;
    await q.upsertJobScheduler('daily-deadline-sweep', { pattern: '0 1 * * *', tz }, { name: 'sweep', opts: { removeOnComplete: { count: 60 }, removeOnFail: { count: 60 } } });
  } finally {
    await q.close();
    connection.disconnect();
  }
}
