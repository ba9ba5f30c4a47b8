import { DelayedError, Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Db } from '../store/db.ts';
import type { Redis } from 'ioredis';
import type { Config } from '../config/env.ts';
import type { Logger } from '../core/log.ts';
import { noticeMessage, type NoticeContent } from '../workflow/notify.message.ts';
import { judgeAnswer, quietUntil, robotRequest, type RobotKind } from '../workflow/notify.robots.ts';
import { QUEUE } from './queues.ts';

/** A send job: one outbox row. The relay job has no data. */
export interface NotifyJobData {
  id?: number;
}

/** The most of a robot's answer that is read (its JSON is tiny; anything longer is not a robot's). */
const ANSWER_MAX_BYTES = 64 * 1024;

/** A message claimed this long ago and still `sending` was cut off (its worker died): the relay queues it again. */
const CLAIM_LEASE_S = 120;

/** What became of one try. */
type SendOutcome = 'sent' | 'retry' | 'refused' | 'failed' | 'skipped';

/**
 * Network errors after which the robot certainly never got the message (nothing was connected);
 * after any other (a timeout, a reset mid-answer) it may have: the next try is marked a resend.
 */
const NOT_CONNECTED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

async function readBounded(res: Response): Promise<string> {
  const reader = res.body?.getReader();
  if (!reader) return '';
  const chunks: Uint8Array[] = [];
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    n += value.byteLength;
    if (n >= ANSWER_MAX_BYTES) {
      await reader.cancel();
      break;
    }
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * One try of one outbox message. The row is claimed (`sending`, one more attempt) in a committed
 * transaction before anything is posted and the answer recorded after, so a message is never posted
 * by two workers at once and one whose worker died mid-send is found `sending` by the next try: that
 * try, like one after a timeout, is marked a resend (in_doubt) in the message itself, with its key.
 * A robot's refusal is final (`refused`: the channel records why, for the admin); a busy or unreachable
 * robot is tried again (`retry`, the caller backs off) until TUBAN_NOTIFY_ATTEMPTS, then `failed`.
 */
async function sendOutboxMessage(
  db: Db,
  config: Config,
  log: Logger,
  id: number,
  fetchImpl: typeof fetch = fetch,
): Promise<SendOutcome> {
  const claimed = await db.transaction(async (trx) => {
    const row = await trx('notify_outbox').where({ id }).forUpdate().first();
    if (!row || !['pending', 'sending'].includes(row.status)) return null;
    const channel = await trx('notify_channel').where({ id: row.channel_id }).first();
    if (!channel?.enabled) {
      await trx('notify_outbox').where({ id }).update({ status: 'cancelled', last_error: 'channel switched off' });
      return null;
    }
    const inDoubt = row.in_doubt || row.status === 'sending';
    const [claim] = await trx('notify_outbox')
      .where({ id })
      .update({ status: 'sending', attempts: row.attempts + 1, claimed_at: trx.fn.now(), in_doubt: inDoubt })
      .returning(['attempts']);
    return { row, channel, inDoubt, attempt: Number(claim.attempts) };
  });
  if (!claimed) return 'skipped';
  const { row, channel, inDoubt, attempt } = claimed;
  const msg = noticeMessage(row.content as NoticeContent, {
    publicUrl: config.TUBAN_PUBLIC_URL,
    resend: inDoubt,
    number: String(row.id),
  });
  const req = robotRequest(channel.kind as RobotKind, channel.webhook, channel.secret, msg);
  let verdict: { outcome: 'sent' | 'retry' | 'refused'; reason?: string; maybeDelivered?: boolean };
  try {
    const res = await fetchImpl(req.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8', 'idempotency-key': row.key },
      body: req.body,
      redirect: 'error',
      signal: AbortSignal.timeout(config.TUBAN_NOTIFY_TIMEOUT_S * 1000),
    });
    verdict = judgeAnswer(res.status, await readBounded(res));
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const code = e.cause?.code ?? e.name;
    const timedOut = e.name === 'TimeoutError' || e.name === 'AbortError';
    verdict = {
      outcome: 'retry',
      reason: timedOut
        ? `no answer within ${config.TUBAN_NOTIFY_TIMEOUT_S} s`
        : `${code}: ${e.cause?.message ?? e.message}`,
      maybeDelivered: !NOT_CONNECTED.has(code),
    };
  }
  const fields = { id, key: row.key, channel: channel.name, notice: row.event, attempt };
  if (verdict.outcome === 'sent') {
    await db.transaction(async (trx) => {
      await trx('notify_outbox').where({ id }).update({ status: 'sent', sent_at: trx.fn.now(), last_error: null });
      await trx('notify_channel').where({ id: channel.id }).update({ last_sent_at: trx.fn.now() });
    });
    log.info('Notify:Sent', { ...fields, resend: inDoubt });
    return 'sent';
  }
  const reason = verdict.reason ?? '';
  const final = verdict.outcome === 'refused' || attempt >= config.TUBAN_NOTIFY_ATTEMPTS;
  const status = verdict.outcome === 'refused' ? 'refused' : final ? 'failed' : 'pending';
  await db.transaction(async (trx) => {
    await trx('notify_outbox')
      .where({ id })
      .update({ status, last_error: reason, ...(verdict.maybeDelivered ? { in_doubt: true } : {}) });
    if (final)
      await trx('notify_channel')
        .where({ id: channel.id })
        .update({ last_error: `${status}: ${reason}`.slice(0, 500), last_error_at: trx.fn.now() });
  });
  if (final)
    log[verdict.outcome === 'refused' ? 'warn' : 'error'](
      verdict.outcome === 'refused' ? 'Notify:Refused' : 'Notify:Failed',
      { ...fields, reason },
    );
  else log.info('Notify:Retry', { ...fields, reason });
  return status === 'pending' ? 'retry' : (status as SendOutcome);
}

/**
 * Queues a send job for every message not yet sent: new ones, ones whose job was lost (Redis keeps
 * nothing on disk) and ones cut off mid-send. A message's job id is its row id, so a message already
 * queued is not queued twice.
 */
async function relayOutbox(db: Db, queue: Queue, config: Config): Promise<number> {
  const ids: number[] = await db('notify_outbox')
    .where({ status: 'pending' })
    .orWhere(
      (q) =>
        void q
          .where({ status: 'sending' })
          .andWhere('claimed_at', '<', db.raw(`now() - interval '${CLAIM_LEASE_S} seconds'`)),
    )
    .orderBy('id')
    .limit(1000)
    .pluck('id');
  for (const id of ids)
    await queue.add(
      'send',
      { id: Number(id) },
      {
        jobId: `out-${id}`,
        attempts: config.TUBAN_NOTIFY_ATTEMPTS,
        backoff: { type: 'exponential', delay: config.TUBAN_NOTIFY_BACKOFF_MS },
        removeOnComplete: true,
        removeOnFail: true,
      },
    );
  return ids.length;
}

/**
 * The notification worker: `send` jobs post one message each (held back until quiet hours end,
 * retried with exponential backoff, BullMQ's); `relay` jobs (every TUBAN_NOTIFY_RELAY_MS, and at once
 * when the server has written messages) queue what the outbox holds.
 */
export function notifyWorker(opts: {
  db: Db;
  config: Config;
  log: Logger;
  connection: Redis;
  common: Record<string, unknown>;
}): Worker<NotifyJobData> {
  const { db, config, log } = opts;
  const queue = new Queue(QUEUE.notify, { connection: opts.connection, prefix: config.TUBAN_QUEUE_PREFIX });
  const worker = new Worker<NotifyJobData>(
    QUEUE.notify,
    async (job: Job<NotifyJobData>, token?: string) => {
      if (job.name === 'relay') return { queued: await relayOutbox(db, queue, config) };
      const until = quietUntil(config.TUBAN_NOTIFY_QUIET, new Date(), config.TUBAN_UTC_OFFSET_H);
      if (until) {
        await job.moveToDelayed(until.getTime(), token);
        throw new DelayedError();
      }
      const outcome = await sendOutboxMessage(db, config, log, job.data.id!);
      if (outcome === 'retry') throw new Error(`message ${job.data.id}: not delivered yet, trying again`);
      if (outcome === 'failed') throw new UnrecoverableError(`message ${job.data.id}: failed for good`);
      return { outcome };
    },
    { ...opts.common, concurrency: 4, connection: opts.connection },
  );
  worker.on('closed', () => void queue.close());
  return worker;
}

/** The relay as a BullMQ job scheduler, every TUBAN_NOTIFY_RELAY_MS; upserting it again changes nothing. */
export async function scheduleNotifyRelay(config: Config, connection: Redis): Promise<void> {
  const q = new Queue(QUEUE.notify, { connection, prefix: config.TUBAN_QUEUE_PREFIX });
  try {
    await q.upsertJobScheduler(
      'notify-relay',
      { every: config.TUBAN_NOTIFY_RELAY_MS },
      { name: 'relay', opts: { removeOnComplete: true, removeOnFail: { count: 20 } } },
    );
  } finally {
    await q.close();
  }
}
