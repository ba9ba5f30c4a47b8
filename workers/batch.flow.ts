import type { FlowJob } from 'bullmq';
import { QUEUE, type DiffJobData, type PartJobData } from './queues.ts';

export interface FlowOptions {
  attempts: number;
  backoffMs: number;
}

/**
 * The BullMQ flow of one batch, as data: a diff job whose children are one job per part (window
 * range) of each tile, which detects and vectorizes that part. Children that fail
 * are recorded as ignored dependencies, so one bad tile never holds up the rest of the batch. Job
 * ids derive from the database instance, batch, tile and part, so adding the same flow twice adds
 * nothing.
 */
/** Job-id stem of a batch's flow: database instance, batch, and retry round (0 = first run). */
export function flowKey(instanceId: string, batchId: number, round = 0): string {
  return `${instanceId.slice(0, 12)}-b${batchId}${round ? `-r${round}` : ''}`;
}

export function batchFlow(
  key: string,
  batchId: number,
  parts: { imageryId: number; part: number }[],
  prefix: string,
  opts: FlowOptions,
): FlowJob {
  const jobOpts = (id: string) => ({
    jobId: id,
    attempts: opts.attempts,
    backoff: { type: 'exponential', delay: opts.backoffMs },
    ignoreDependencyOnFailure: true,
    removeOnComplete: { age: 7 * 24 * 3600 },
    removeOnFail: { age: 30 * 24 * 3600 },
  });
  return {
    name: 'diff',
    queueName: QUEUE.diff,
    prefix,
    data: { batchId } satisfies DiffJobData,
    opts: { jobId: `${key}-diff`, attempts: opts.attempts, backoff: { type: 'exponential', delay: opts.backoffMs } },
    children: parts.map(({ imageryId, part }) => ({
      name: 'part',
      queueName: QUEUE.part,
      prefix,
      data: { batchId, imageryId, part } satisfies PartJobData,
      opts: jobOpts(partJobId(key, imageryId, part)),
    })),
  };
}

export function partJobId(key: string, imageryId: number, part: number): string {
  return `${key}-t${imageryId}-p${part}`;
}
