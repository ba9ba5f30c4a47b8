import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../config/env.ts';
import type { Logger } from '../core/log.ts';
import { QUEUE } from './queues.ts';

/**
 * The server's nudge after a change that wrote messages: one relay job now, instead of waiting for the
 * next scheduled one (a nudge already waiting is enough). Without Redis the scheduled relay sends them.
 */
export function notifyKicker(config: Config, connection: Redis | undefined, log: Logger) {
  if (!connection) return { kick: () => {}, close: async () => {} };
  const queue = new Queue(QUEUE.notify, { connection, prefix: config.TUBAN_QUEUE_PREFIX });
  return {
    kick: () =>
      void queue
        .add('relay', {}, { jobId: 'relay-now', removeOnComplete: true, removeOnFail: true })
        .catch((err: Error) => log.warn('Notify:KickFailed', { message: err.message })),
    close: () => queue.close(),
  };
}
