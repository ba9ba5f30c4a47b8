import { TransientError } from '../core/errors.ts';
import { Redis, type RedisOptions } from 'ioredis';
import type { Config } from '../config/env.ts';

/**
 * part: detect and vectorize one part of a scene; diff: the batch against the layers, once all parts
 * are in; deadlines: the daily sweep; notify: messages to the group robots (workers/notify.ts).
 */
export const QUEUE = { part: 'part', diff: 'diff', deadlines: 'deadlines', notify: 'notify' } as const;

/** Payload of a part job: one part (window range) of one scene. */
export interface PartJobData {
  batchId: number;
  imageryId: number;
  /** Part number (see store/batch.ts ensureParts); absent in jobs enqueued before parts: 0. */
  part?: number;
}

export interface DiffJobData {
  batchId: number;
}

/**
 * A Redis connection for BullMQ: no per-command retry limit (BullMQ's blocking commands need
 * that), and reconnect with capped backoff so a restarted Redis is picked up again.
 */
export function redisConnection(config: Config, extra: RedisOptions = {}): Redis {
  return new Redis(config.REDIS_URL, {
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    retryStrategy: (times) => Math.min(200 * 2 ** Math.min(times, 6), 10_000),
    ...extra,
  });
}

/** Ping Redis once with a short timeout; a clear message when nothing answers. */
export async function checkRedis(config: Config, timeoutMs = 2000): Promise<void> {
  const r = new Redis(config.REDIS_URL, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    connectTimeout: timeoutMs,
    retryStrategy: () => null,
  });
  r.on('error', () => {}); // the failure is reported below, once, not as an unhandled error event
  try {
    await r.connect();
    await r.ping();
  } catch (err) {
    throw new TransientError(
      `Redis does not answer at ${config.REDIS_URL} (${(err as Error).message}); start one (e.g. 'redis-server --port 6379 --save "" --daemonize yes') or set REDIS_URL`,
      { service: 'redis' },
    );
  } finally {
    r.disconnect();
  }
}
