import { Queue } from 'bullmq';
import type { Db } from '../store/db.ts';
import type { Redis } from 'ioredis';
import type { Config } from '../config/env.ts';
import { NotFoundError } from '../core/errors.ts';
import { cityTime } from '../core/time.ts';
import { runSql } from '../store/sql.ts';
import type { BatchRow } from '../store/batch.ts';
import { flowKey, partJobId } from './batch.flow.ts';
import { QUEUE } from './queues.ts';

/** A batch as the recent-batches list shows it: the batch row's identity, its times and its counts. */
export type BatchListItem = Pick<
  BatchRow,
  'id' | 'month' | 'baseline_month' | 'status' | 'model_name' | 'model_version'
> & {
  created_at: string;
  finished_at: string | null;
  tiles: number;
  queued: number;
  vectorized: number;
  failed: number;
  patches: { new: number; redetected: number } | null;
};

/** Batch rows as recent.sql gives them, with their times in the city's local time (core/time.ts). */
async function batchRows(db: Db, utcOffsetH: number, batchId: number | null, limit: number): Promise<BatchListItem[]> {
  const rows = await runSql<BatchListItem & { created_at: Date; finished_at: Date | null }>(db, 'batch/recent', {
    batch_id: batchId,
    limit,
  });
  return rows.map((r) => ({
    ...r,
    created_at: cityTime(r.created_at, utcOffsetH) ?? '',
    finished_at: cityTime(r.finished_at, utcOffsetH),
  }));
}

/** The recent batches, newest first; times in the city's local time (`utcOffsetH`). */
export async function recentBatches(db: Db, utcOffsetH: number, limit = 20): Promise<BatchListItem[]> {
  return batchRows(db, utcOffsetH, null, limit);
}

/** A BullMQ job's state, or null when the queue holds no such job (removed, or never enqueued). */
type JobState =
  | 'waiting'
  | 'waiting-children'
  | 'delayed'
  | 'active'
  | 'completed'
  | 'failed'
  | 'prioritized'
  | 'unknown'
  | null;

export type BatchProgress = {
  batch: BatchListItem;
  /**
   * Per tile: the database status (what has been committed), its parts done, and the states of
   * its parts' jobs in BullMQ (what is running), as a "state count" list.
   */
  tiles: {
    imagery_id: number;
    path: string;
    status: string;
    error_code: string | null;
    error_message: string | null;
    parts: number;
    parts_done: number;
    part_jobs: string | null;
    attempts: number;
  }[];
  diff: JobState;
  /** Jobs of this batch BullMQ holds right now, by state. */
  jobs: Record<string, number>;
  queueAvailable: boolean;
};

/** Above this many parts in a batch, only unfinished parts' jobs are looked up in BullMQ. */
const ALL_PARTS_LOOKUP = 400;

/**
 * Live progress of a batch: tile and part rows from the database joined with the states of the
 * batch's part and diff jobs in BullMQ (job ids are derived from the batch, tile and
 * part, so they are found without scanning the queues). Parts retried in a later round are looked
 * up in that round first.
 */
export class BatchProgressReader {
  private readonly queues: Record<'part' | 'diff', Queue> | null;
  /** Without a Redis connection only the database's side is reported (queueAvailable false). */
  constructor(
    private readonly db: Db,
    private readonly config: Config,
    connection?: Redis,
  ) {
    const mk = (name: string) => new Queue(name, { connection: connection!, prefix: config.TUBAN_QUEUE_PREFIX });
    this.queues = connection ? { part: mk(QUEUE.part), diff: mk(QUEUE.diff) } : null;
  }

  async read(batchId: number): Promise<BatchProgress> {
    const [batch] = await batchRows(this.db, this.config.TUBAN_UTC_OFFSET_H, batchId, 1);
    if (!batch) throw new NotFoundError(`no batch ${batchId}`);
    const tiles = await this.db('batch_tile as t')
      .join('imagery as i', 'i.id', 't.imagery_id')
      .where('t.batch_id', batchId)
      .orderBy('i.path')
      .select('t.imagery_id', 'i.path', 't.status', 't.error_code', 't.error_message');
    const parts = await this.db('batch_part')
      .where({ batch_id: batchId })
      .orderBy(['imagery_id', 'part'])
      .select('imagery_id', 'part', 'status');
    const b = await this.db('batch').where({ id: batchId }).first('params');
    const instance = (await this.db('setting').where({ key: 'instance_id' }).first())?.value as string;
    const lastRound = Number(b?.params?.retryRound ?? 0);
    const jobs: Record<string, number> = {};
    let queueAvailable = this.queues !== null;
    const state = async (
      queue: Queue,
      id: (round: number) => string,
    ): Promise<{ state: JobState; attempts: number }> => {
      for (let round = lastRound; round >= 0; round--) {
        const job = await queue.getJob(id(round));
        if (job) {
          const s = (await job.getState()) as JobState;
          jobs[s ?? 'unknown'] = (jobs[s ?? 'unknown'] ?? 0) + 1;
          return { state: s, attempts: job.attemptsMade };
        }
      }
      return { state: null, attempts: 0 };
    };
    const perTile = new Map<number, { states: Record<string, number>; attempts: number }>();
    let diff: JobState = null;
    try {
      if (!this.queues) throw new Error('no queue connection');
      const lookup =
        parts.length <= ALL_PARTS_LOOKUP ? parts : parts.filter((p) => !['vectorized', 'failed'].includes(p.status));
      // all lookups in flight at once: the connection sends them without waiting for each answer
      const queues = this.queues;
      const found = await Promise.all(
        lookup.map(async (p) => {
          const id = Number(p.imagery_id);
          return {
            id,
            ...(await state(queues.part, (round) => partJobId(flowKey(instance, batchId, round), id, Number(p.part)))),
          };
        }),
      );
      for (const r of found) {
        const t = perTile.get(r.id) ?? { states: {}, attempts: 0 };
        perTile.set(r.id, t);
        const k = r.state ?? 'none';
        t.states[k] = (t.states[k] ?? 0) + 1;
        t.attempts += r.attempts;
      }
      diff = (await state(this.queues.diff, (r) => `${flowKey(instance, batchId, r)}-diff`)).state;
    } catch {
      queueAvailable = false; // Redis is down: the database rows still tell what has been committed
    }
    const counts = (c: Record<string, number> | undefined, n: number) => {
      if (!c) return null;
      const entries = Object.entries(c);
      return entries.length === 1 && n === 1 ? entries[0][0] : entries.map(([k, v]) => `${k} ${v}`).join(', ');
    };
    const partsOf = new Map<number, { status: string }[]>();
    for (const p of parts) {
      const id = Number(p.imagery_id);
      const list = partsOf.get(id);
      if (list) list.push(p);
      else partsOf.set(id, [p]);
    }
    const rows: BatchProgress['tiles'] = tiles.map((t) => {
      const id = Number(t.imagery_id);
      const mine = partsOf.get(id) ?? [];
      const jobStates = perTile.get(id);
      return {
        imagery_id: id,
        path: t.path,
        status: t.status,
        error_code: t.error_code,
        error_message: t.error_message,
        parts: mine.length,
        parts_done: mine.filter((p) => p.status === 'vectorized').length,
        part_jobs: counts(jobStates?.states, mine.length),
        attempts: jobStates?.attempts ?? 0,
      };
    });
    return { batch, tiles: rows, diff, jobs, queueAvailable };
  }

  async close(): Promise<void> {
    if (this.queues) await Promise.all(Object.values(this.queues).map((q) => q.close()));
  }
}
