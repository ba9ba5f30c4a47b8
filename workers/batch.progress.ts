import { Queue } from 'bullmq';
import type { Knex } from 'knex';
import type { Redis } from 'ioredis';
import type { Config } from '../config/env.ts';
import { NotFoundError } from '../pipeline/errors.ts';
import { runSql } from '../store/sql.ts';
import { flowKey } from './batch.flow.ts';
import { QUEUE } from './queues.ts';

export interface BatchListItem {
  id: number; month: string; baseline_month: string; status: string; model_name: string; model_version: string;
  created_at: string; finished_at: string | null; tiles: number; queued: number; detected: number; vectorized: number; failed: number;
  patches: { new: number; redetected: number } | null;
}

export async function recentBatches(db: Knex, limit = 20): Promise<BatchListItem[]> {
  return runSql<BatchListItem>(db, 'batch/recent', { batch_id: null, limit });
}

/** A BullMQ job's state, or null when the queue holds no such job (removed, or never enqueued). */
type JobState = 'waiting' | 'waiting-children' | 'delayed' | 'active' | 'completed' | 'failed' | 'prioritized' | 'unknown' | null;

export interface BatchProgress {
  batch: BatchListItem;
  /** Per tile: the database status (what has been committed) and the stage jobs' states in BullMQ (what is running). */
  tiles: { imagery_id: number; path: string; status: string; error_code: string | null; error_message: string | null; detect: JobState; vectorize: JobState; attempts: number }[];
  diff: JobState;
  /** Jobs of this batch BullMQ holds right now, by state. */
  jobs: Record<string, number>;
  queueAvailable: boolean;
}

/**
 * Live progress of a batch: tile rows from the database joined with the states of the batch's
 * detect, vectorize and diff jobs in BullMQ (job ids are derived from the batch, so they are found
 * without scanning the queues). Tiles retried in a later round are looked up in that round first.
 */
export class BatchProgressReader {
  private readonly queues: Record<'detect' | 'vectorize' | 'diff', Queue> | null;
  /** Without a Redis connection only the database's side is reported (queueAvailable false). */
  constructor(private readonly db: Knex, config: Config, connection?: Redis) {
    const mk = (name: string) => new Queue(name, { connection: connection!, prefix: config.TUBAN_QUEUE_PREFIX });
    this.queues = connection ? { detect: mk(QUEUE.detect), vectorize: mk(QUEUE.vectorize), diff: mk(QUEUE.diff) } : null;
  }

  async read(batchId: number): Promise<BatchProgress> {
    const [batch] = await runSql<BatchListItem>(this.db, 'batch/recent', { batch_id: batchId, limit: 1 });
    if (!batch) throw new NotFoundError(`no batch ${batchId}`);
    const tiles = await this.db('batch_tile as t').join('imagery as i', 'i.id', 't.imagery_id').where('t.batch_id', batchId).orderBy('i.path')
      .select('t.imagery_id', 'i.path', 't.status', 't.error_code', 't.error_message');
    const b = await this.db('batch').where({ id: batchId }).first('params');
    const instance = (await this.db('setting').where({ key: 'instance_id' }).first())?.value as string;
    const lastRound = Number(b?.params?.retryRound ?? 0);
    const jobs: Record<string, number> = {};
    let queueAvailable = this.queues !== null;
    const state = async (queue: Queue, stem: (round: number) => string): Promise<{ state: JobState; attempts: number }> => {
      for (let round = lastRound; round >= 0; round--) {
        const job = await queue.getJob(stem(round));
        if (job) {
          const s = (await job.getState()) as JobState;
          jobs[s ?? 'unknown'] = (jobs[s ?? 'unknown'] ?? 0) + 1;
          return { state: s, attempts: job.attemptsMade };
        }
      }
      return { state: null, attempts: 0 };
    };
    const rows: BatchProgress['tiles'] = [];
    let diff: JobState = null;
    try {
      if (!this.queues) throw new Error('no queue connection');
      for (const t of tiles) {
        const id = Number(t.imagery_id);
        const d = await state(this.queues!.detect, (r) => `${flowKey(instance, batchId, r)}-t${id}-detect`);
        const v = await state(this.queues!.vectorize, (r) => `${flowKey(instance, batchId, r)}-t${id}-vectorize`);
        rows.push({ imagery_id: id, path: t.path, status: t.status, error_code: t.error_code, error_message: t.error_message, detect: d.state, vectorize: v.state, attempts: d.attempts + v.attempts });
      }
      diff = (await state(this.queues!.diff, (r) => `${flowKey(instance, batchId, r)}-diff`)).state;
    } catch {
      // Redis is down: the database rows still tell what has been committed
      queueAvailable = false;
      for (const t of tiles.slice(rows.length)) rows.push({ imagery_id: Number(t.imagery_id), path: t.path, status: t.status, error_code: t.error_code, error_message: t.error_message, detect: null, vectorize: null, attempts: 0 });
    }
    return { batch, tiles: rows, diff, jobs, queueAvailable };
  }

  async close(): Promise<void> {
    if (this.queues) await Promise.all(Object.values(this.queues).map((q) => q.close()));
  }
}
