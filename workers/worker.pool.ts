import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Db } from '../store/db.ts';
import type { Config } from '../config/env.ts';
import type { ChangeModel } from '../pipeline/change.model.ts';
import { modelShelf } from './models.ts';
import { errorCodeOf, errorFate, errorKindOf } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { batchTile } from '../store/batch.ts';
import { updatePartAndTile } from '../store/batch.parts.ts';
import { sweepOverdue } from '../store/overdue.ts';
import { refreshCalendar } from '../store/calendar.ts';
import type { WorkflowEnv } from '../workflow/env.ts';
import { QUEUE, redisConnection, type DiffJobData, type PartJobData } from './queues.ts';
import { diffJob, partJob, partStageOf, type JobContext } from './jobs.ts';
import { notifyWorker, scheduleNotifyRelay } from './notify.ts';

export interface WorkerPool {
  workers: Worker[];
  /** Starts taking jobs when the pool was made with `autorun: false` (log that the worker is up first). */
  run(): void;
  /** Calls `listener` once when this pool's diff worker next ends a job (completed or failed); returns an unsubscribe. */
  onceDiffEnds: (listener: () => void) => () => void;
  /** Stop taking jobs, let the jobs in hand finish (up to timeoutMs), then close. */
  close(timeoutMs?: number): Promise<void>;
}

/**
 * Starts one BullMQ worker per queue in this process. Errors are sorted by kind: bad input fails
 * the tile at once (UnrecoverableError, no retry); anything else is retried with backoff and the
 * tile is marked failed only when its last attempt fails. Either way the reason lands in
 * batch_tile, where the batch summary reads it.
 */
export function startWorkers(opts: {
  db: Db;
  config: Config;
  model: ChangeModel;
  log: Logger;
  concurrency?: number;
  workflow?: WorkflowEnv;
  autorun?: boolean;
}): WorkerPool {
  const models = modelShelf(opts.db, opts.config);
  const ctx: JobContext = { db: opts.db, config: opts.config, model: opts.model, log: opts.log, models };
  const concurrency = opts.concurrency ?? opts.config.TUBAN_CONCURRENCY;
  const attempts = opts.config.TUBAN_JOB_ATTEMPTS;
  // Tries are counted here, stalls (a worker killed or out of memory) and errors alike, against
  // TUBAN_JOB_ATTEMPTS (see triesOf); BullMQ's own stall limit sits above that and is never reached.
  const common = {
    prefix: opts.config.TUBAN_QUEUE_PREFIX,
    concurrency,
    lockDuration: opts.config.TUBAN_LOCK_MS,
    stalledInterval: opts.config.TUBAN_STALLED_INTERVAL_MS,
    maxStalledCount: attempts + 1,
    autorun: opts.autorun ?? true,
  };

  /** Marks a part failed for good with its reason (the batch summary reads it). */
  const failPart = (batchId: number, imageryId: number, part: number, code: string, message: string) =>
    ctx.db.transaction((trx) =>
      updatePartAndTile(trx, batchId, imageryId, part, {
        status: 'failed',
        error_code: code,
        error_message: message,
      }),
    );

  /**
   * A job whose worker died on an earlier try is logged as such; once its tries are used it fails
   * for good (`fail` records why) instead of running again. Returns which try this is.
   */
  const checkDeaths = async (
    job: Job,
    what: string,
    event: string,
    fields: () => Promise<Record<string, unknown>>,
    fail: (message: string) => Promise<unknown>,
  ) => {
    const tries = triesOf(job);
    if (tries.died === 0) return tries;
    ctx.log.warn(event, {
      ...(await fields()),
      died: tries.died,
      failed: job.attemptsMade,
      attempt: tries.now,
      of: attempts,
    });
    if (tries.now > attempts) {
      const message = `the worker running ${what} died ${tries.died} time(s) (killed, or out of memory) and it failed ${job.attemptsMade} time(s): ${attempts} tries (TUBAN_JOB_ATTEMPTS) used`;
      await fail(message);
      throw new UnrecoverableError(message);
    }
    return tries;
  };

  const partHandler = async (job: Job<PartJobData>) => {
    const { batchId, imageryId } = job.data;
    const part = job.data.part ?? 0;
    const tries = await checkDeaths(
      job,
      'this part',
      'Part:WorkerDied',
      async () => ({ batchId, imageryId, part, path: (await batchTile(ctx.db, batchId, imageryId))?.path }),
      (message) => failPart(batchId, imageryId, part, 'worker_died', message),
    );
    try {
      return await partJob(ctx, batchId, imageryId, part, (pct) => void job.updateProgress(pct));
    } catch (err) {
      const kind = errorKindOf(err);
      const last = !errorFate[kind].retry || tries.now >= attempts;
      const path = (await batchTile(ctx.db, batchId, imageryId))?.path;
      const stage = partStageOf(err);
      ctx.log.warn('Part:Failed', {
        batchId,
        imageryId,
        part,
        path,
        stage,
        attempt: tries.now,
        final: last,
        code: errorCodeOf(err),
        message: (err as Error).message,
      });
      if (last) {
        const message = stage ? `${stage}: ${(err as Error).message}` : (err as Error).message;
        await failPart(batchId, imageryId, part, errorCodeOf(err), message);
        // BullMQ counts only errors: stop it retrying once the tries, deaths included, are used
        throw new UnrecoverableError((err as Error).message);
      }
      throw err;
    }
  };

  const failBatch = (batchId: number, message: string) =>
    ctx
      .db('batch')
      .where({ id: batchId })
      .update({
        status: 'failed',
        summary: JSON.stringify({ batchId, status: 'failed', error: message }),
        finished_at: ctx.db.fn.now(),
      });
  const diffHandler = async (job: Job<DiffJobData>) => {
    const tries = await checkDeaths(
      job,
      'the diff',
      'Batch:DiffWorkerDied',
      async () => ({ batchId: job.data.batchId }),
      (message) => failBatch(job.data.batchId, message),
    );
    try {
      return await diffJob(ctx, job.data.batchId);
    } catch (err) {
      const last = tries.now >= attempts;
      ctx.log.error('Batch:DiffFailed', {
        batchId: job.data.batchId,
        attempt: tries.now,
        final: last,
        message: (err as Error).message,
      });
      if (last) {
        await failBatch(job.data.batchId, (err as Error).message);
        throw new UnrecoverableError((err as Error).message);
      }
      throw err;
    }
  };

  const connections = [
    redisConnection(opts.config),
    redisConnection(opts.config),
    redisConnection(opts.config),
    redisConnection(opts.config),
  ];
  const diffWorker = new Worker<DiffJobData>(QUEUE.diff, diffHandler, {
    ...common,
    concurrency: 1,
    connection: connections[1],
  });
  const workers: Worker[] = [
    new Worker<PartJobData>(QUEUE.part, partHandler, { ...common, connection: connections[0] }),
    diffWorker,
  ];
  if (opts.workflow) {
    const wf = opts.workflow;
    workers.push(
      new Worker(
        QUEUE.deadlines,
        async () => {
          await refreshCalendar(opts.db, wf); // a year added since counts from today's sweep on
          const r = await sweepOverdue(opts.db, wf);
          opts.log.info('Deadlines:Swept', { today: wf.today(), ...r });
          return r;
        },
        { ...common, concurrency: 1, connection: connections[2] },
      ),
      // the messages the sweep and the server's changes wrote, to the group robots
      notifyWorker({ db: opts.db, config: opts.config, log: opts.log, connection: connections[3], common }),
    );
  } else {
    connections[2].disconnect();
    connections[3].disconnect();
  }
  for (const w of workers)
    w.on('error', (err) => opts.log.error('Worker:Error', { queue: w.name, message: err.message }));

  return {
    workers,
    run() {
      for (const w of workers)
        if (!w.isRunning())
          void w.run().catch((err: Error) => opts.log.error('Worker:Error', { queue: w.name, message: err.message }));
    },
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
      await models.close();
    },
  };
}

/**
 * Which try of a job this is: BullMQ counts failed attempts (attemptsMade) and stalls (a lock that
 * lapsed because the worker died) apart; a job has TUBAN_JOB_ATTEMPTS tries in all, however each
 * earlier one ended.
 */
function triesOf(job: Job): { now: number; died: number } {
  const died = job.stalledCounter ?? 0;
  return { now: job.attemptsMade + died + 1, died };
}

/**
 * The daily deadline sweep as a BullMQ job scheduler (01:00 city time), and the notification relay
 * (every TUBAN_NOTIFY_RELAY_MS); upserting them again changes nothing.
 */
export async function scheduleDeadlineSweep(config: Config): Promise<void> {
  const { Queue } = await import('bullmq');
  const connection = redisConnection(config);
  const q = new Queue(QUEUE.deadlines, { connection, prefix: config.TUBAN_QUEUE_PREFIX });
  try {
    const tz = `Etc/GMT${config.TUBAN_UTC_OFFSET_H >= 0 ? '-' : '+'}${Math.abs(config.TUBAN_UTC_OFFSET_H)}`;
    await q.upsertJobScheduler(
      'daily-deadline-sweep',
      { pattern: '0 1 * * *', tz },
      { name: 'sweep', opts: { removeOnComplete: { count: 60 }, removeOnFail: { count: 60 } } },
    );
    await scheduleNotifyRelay(config, connection);
  } finally {
    await q.close();
    connection.disconnect();
  }
}
