import { createHash, randomUUID } from 'node:crypto';
import type { Db } from './db.ts';
import { z } from 'zod';
import { say } from '../i18n/say.ts';
import { BadInputError, ConflictError, NotFoundError } from '../core/errors.ts';
import { TownCode } from '../workflow/actions.schema.ts';
import { NOTICE_EVENTS, type NoticeContent, type NoticeEvent, type NoticeTown } from '../workflow/notify.message.ts';
import { maskWebhook, ROBOT_KINDS, webhookProblem } from '../workflow/notify.robots.ts';

/** A channel as the admin sets it up: which robot, whose group, which events. */
export const ChannelBody = z.object({
  name: z.string().trim().min(1).max(100).describe('what the admin calls it, e.g. 殿前街道工作群'),
  kind: z.enum(ROBOT_KINDS).describe('wecom (企业微信) or dingtalk (钉钉)'),
  webhook: z.string().max(2000).describe('the robot webhook URL with its key or access_token (never shown back)'),
  secret: z.string().min(1).max(200).optional().describe('钉钉 加签 secret (SEC…), never shown back'),
  town_code: TownCode.nullable()
    .optional()
    .describe("the town whose group this is; absent or null: the supervisors' group, the whole city"),
  events: z
    .array(z.enum(NOTICE_EVENTS))
    .min(1)
    .optional()
    .describe(`what the group hears; default all: ${NOTICE_EVENTS.join(', ')}`),
});
export type ChannelBody = z.infer<typeof ChannelBody>;

export const ChannelPatch = z.object({
  enabled: z.boolean().optional(),
  webhook: z.string().max(2000).optional(),
  secret: z.string().min(1).max(200).nullable().optional(),
  events: z.array(z.enum(NOTICE_EVENTS)).min(1).optional(),
});
export type ChannelPatch = z.infer<typeof ChannelPatch>;

/** A channel as it is shown: the webhook masked, whether a secret is set, its last success and last refusal, its messages by state. */
export interface ChannelView {
  id: number;
  name: string;
  kind: string;
  town_code: string | null;
  town_name: string | null;
  webhook: string;
  has_secret: boolean;
  events: string[];
  enabled: boolean;
  created_by: string;
  last_sent_at: string | null;
  last_error: string | null;
  last_error_at: string | null;
  messages: Record<string, number>;
}

function checkWebhook(webhook: string): void {
  const problem = webhookProblem(webhook);
  if (problem) throw new BadInputError('bad_field', problem, { field: 'webhook' });
}

export async function listChannels(db: Db): Promise<ChannelView[]> {
  const rows = await db('notify_channel as c')
    .leftJoin('reference_feature as t', (j) => void j.on('t.code', 'c.town_code').andOnVal('t.kind', 'town'))
    .orderBy('c.id')
    .select('c.*', 't.name as town_name');
  const counts = await db('notify_outbox').groupBy('channel_id', 'status').select('channel_id', 'status').count('*');
  return rows.map((r) => ({
    id: r.id,
    name: r.name,
    kind: r.kind,
    town_code: r.town_code,
    town_name: r.town_name ?? null,
    webhook: maskWebhook(r.webhook),
    has_secret: !!r.secret,
    events: r.events,
    enabled: r.enabled,
    created_by: r.created_by,
    last_sent_at: r.last_sent_at?.toISOString() ?? null,
    last_error: r.last_error,
    last_error_at: r.last_error_at?.toISOString() ?? null,
    messages: Object.fromEntries(
      counts.filter((c) => c.channel_id === r.id).map((c) => [String(c.status), Number(c.count)]),
    ),
  }));
}

async function channelView(db: Db, id: number): Promise<ChannelView> {
  const c = (await listChannels(db)).find((x) => x.id === id);
  if (!c) throw new NotFoundError(say('notify_channel_unknown', { id }));
  return c;
}

export async function addChannel(db: Db, by: string, b: ChannelBody): Promise<ChannelView> {
  checkWebhook(b.webhook);
  if (b.secret && b.kind === 'wecom')
    throw new BadInputError('bad_field', say('notify_secret_wecom'), { field: 'secret' });
  if (b.town_code) {
    const town = await db('reference_feature').where({ kind: 'town', code: b.town_code }).first('code');
    if (!town) throw new BadInputError('bad_field', say('town_unknown', { town: b.town_code }), { field: 'town_code' });
  }
  if (await db('notify_channel').where({ name: b.name }).first('id'))
    throw new ConflictError(say('notify_channel_exists', { name: b.name }));
  const [row] = await db('notify_channel')
    .insert({
      name: b.name,
      kind: b.kind,
      town_code: b.town_code ?? null,
      webhook: b.webhook,
      secret: b.secret ?? null,
      events: b.events ?? [...NOTICE_EVENTS],
      created_by: by,
    })
    .returning('id');
  return channelView(db, row.id);
}

/** Switch a channel off or on, or change its webhook, secret or events; switched off, its unsent messages are cancelled. */
export async function updateChannel(db: Db, id: number, p: ChannelPatch): Promise<ChannelView> {
  const c = await db('notify_channel').where({ id }).forUpdate().first();
  if (!c) throw new NotFoundError(say('notify_channel_unknown', { id }));
  if (p.webhook !== undefined) checkWebhook(p.webhook);
  if (p.secret && c.kind === 'wecom')
    throw new BadInputError('bad_field', say('notify_secret_wecom'), { field: 'secret' });
  const update: Record<string, unknown> = {};
  if (p.enabled !== undefined) update.enabled = p.enabled;
  if (p.webhook !== undefined) update.webhook = p.webhook;
  if (p.secret !== undefined) update.secret = p.secret;
  if (p.events !== undefined) update.events = p.events;
  // a new address or secret is a fresh start: the old refusal no longer says anything
  if (p.webhook !== undefined || p.secret !== undefined)
    Object.assign(update, { last_error: null, last_error_at: null });
  if (Object.keys(update).length) await db('notify_channel').where({ id }).update(update);
  if (p.enabled === false)
    await db('notify_outbox')
      .where({ channel_id: id, status: 'pending' })
      .update({ status: 'cancelled', last_error: 'channel switched off' });
  return channelView(db, id);
}

/** A short stable hash of the patches a message is about: the same change never makes two messages. */
const digest = (codes: string[]) =>
  createHash('sha256')
    .update([...codes].sort().join(','))
    .digest('hex')
    .slice(0, 16);

/** A fresh origin for a request's change (each request its own messages). */
const requestOrigin = () => `req-${randomUUID()}`;

/**
 * Writes the messages a change makes into the outbox, in the caller's transaction: for each event,
 * one message per town to that town's channels, and one message naming every town to the supervisors'
 * channels — a bulk move of 300 patches in 12 towns is 12 town messages and one city message. The
 * key — origin, event, channel and the patches (or the origin alone: `fixedKey`, one a day) — is the
 * message's idempotency key: writing the same change twice (a daily sweep run again) adds nothing. Returns how many messages were written.
 */
export async function queueNotices(
  trx: Db,
  origin: string,
  event: NoticeEvent,
  towns: NoticeTown[],
  meta: Omit<NoticeContent, 'event' | 'towns'>,
  opts: { fixedKey?: boolean } = {},
): Promise<number> {
  const live = towns.filter((t) => t.items.length > 0);
  if (live.length === 0) return 0;
  const channels: { id: number; town_code: string | null }[] = await trx('notify_channel')
    .where({ enabled: true })
    .whereRaw('? = any(events)', [event])
    .andWhere(
      (q) =>
        void q.whereNull('town_code').orWhereIn(
          'town_code',
          live.map((t) => t.code),
        ),
    )
    .select('id', 'town_code');
  const rows = channels.flatMap((ch) => {
    const mine = ch.town_code ? live.filter((t) => t.code === ch.town_code) : live;
    if (mine.length === 0) return [];
    const codes = mine.flatMap((t) => t.items.map((i) => i.code));
    const content: NoticeContent = { ...meta, event, towns: mine };
    return [
      {
        key: opts.fixedKey ? `${event}/${ch.id}/${origin}` : `${event}/${ch.id}/${origin}/${digest(codes)}`,
        channel_id: ch.id,
        event,
        town_code: ch.town_code,
        content: JSON.stringify(content),
      },
    ];
  });
  if (rows.length === 0) return 0;
  const written = await trx('notify_outbox').insert(rows).onConflict('key').ignore().returning('id');
  return written.length;
}

/** A test message to one channel, through the outbox like any other. */
export async function queueTest(db: Db, id: number, by: string, today: string): Promise<{ key: string }> {
  const c = await db('notify_channel').where({ id }).first();
  if (!c) throw new NotFoundError(say('notify_channel_unknown', { id }));
  const content: NoticeContent = { event: 'test', date: today, by, towns: [], channel: c.name };
  const key = `test/${id}/${randomUUID()}`;
  await db('notify_outbox').insert({ key, channel_id: id, event: 'test', town_code: c.town_code, content });
  return { key };
}

/** A message as the admin's list shows it: how far it got and the robot's last answer, the patches it names counted. */
export interface OutboxItem {
  id: string;
  key: string;
  event: string;
  town_code: string | null;
  status: string;
  attempts: number;
  in_doubt: boolean;
  created_at: Date;
  sent_at: Date | null;
  last_error: string | null;
  channel: string;
  patches: number;
}

/** Recent messages, newest first, optionally of one state (the admin's view of what was sent and what was refused). */
export async function listOutbox(
  db: Db,
  q: { status?: string; channel?: number; limit?: number },
): Promise<OutboxItem[]> {
  const rows = await db('notify_outbox as o')
    .join('notify_channel as c', 'c.id', 'o.channel_id')
    .modify((b) => {
      if (q.status) void b.where('o.status', q.status);
      if (q.channel) void b.where('o.channel_id', q.channel);
    })
    .orderBy('o.id', 'desc')
    .limit(q.limit ?? 50)
    .select(
      'o.id',
      'o.key',
      'o.event',
      'o.town_code',
      'o.status',
      'o.attempts',
      'o.in_doubt',
      'o.created_at',
      'o.sent_at',
      'o.last_error',
      'o.content',
      'c.name as channel',
    );
  return rows.map(({ content, ...r }: OutboxItem & { content: NoticeContent }) => ({
    ...r,
    patches: content.towns.reduce((n, t) => n + t.items.length, 0),
  }));
}

/** Messages refused by their robot or failed for good, and channels whose robot last refused: what /api/health tells the admin. */
export async function notifyTrouble(db: Db): Promise<{ refused: number; failed: number; channels: string[] }> {
  const [counts, channels] = await Promise.all([
    db('notify_outbox')
      .whereIn('status', ['refused', 'failed'])
      .andWhere('created_at', '>', db.raw("now() - interval '7 days'"))
      .groupBy('status')
      .select('status')
      .count('*'),
    db('notify_channel')
      .where({ enabled: true })
      .whereNotNull('last_error')
      .andWhere((q) => void q.whereNull('last_sent_at').orWhereRaw('last_sent_at < last_error_at'))
      .orderBy('id')
      .pluck('name'),
  ]);
  const n = (s: string) => Number(counts.find((c) => c.status === s)?.count ?? 0);
  return { refused: n('refused'), failed: n('failed'), channels };
}

/** The moves a group is told of, and the event each makes. */
const NOTIFIED_MOVES: Partial<Record<string, NoticeEvent>> = {
  dispatch: 'dispatched',
  send_back: 'sent_back',
  escalate: 'escalated',
};

/**
 * The messages a request's moves make (a dispatch, a send-back, an escalation; one patch or a bulk
 * move's hundreds), written in its transaction: the patches as they now are, by town.
 */
export async function queueMoveNotices(
  trx: Db,
  action: string,
  patchIds: number[],
  by: string,
  today: string,
  reason?: string,
): Promise<number> {
  const event = NOTIFIED_MOVES[action];
  if (!event || patchIds.length === 0) return 0;
  const rows = await trx('patch')
    .whereIn('id', patchIds)
    .orderBy(['town_code', 'code'])
    .select(
      'code',
      'town_code',
      'town_name',
      'area_m2',
      'status',
      trx.raw("to_char(patch_running_due(status, verify_due, rectify_due), 'YYYY-MM-DD') as due"),
    );
  return queueNotices(
    trx,
    requestOrigin(),
    event,
    byTown(rows, (r) => ({
      code: r.code,
      area_m2: Number(r.area_m2),
      due: r.due,
      deadline: r.status === 'rectifying' ? 'rectification' : 'verification',
      ...(reason ? { reason } : {}),
    })),
    { date: today, by },
  );
}

/** Rows grouped by town (in the order given), each turned into a message item. */
export function byTown<R extends { town_code: string | null; town_name: string | null }>(
  rows: R[],
  item: (r: R) => NoticeTown['items'][number],
): NoticeTown[] {
  const towns = new Map<string, NoticeTown>();
  for (const r of rows) {
    // a patch outside every town (the town layer has a gap) reaches the supervisors' groups alone
    const code = r.town_code ?? '';
    const t = towns.get(code) ?? { code, name: r.town_name ?? '未落入镇街', items: [] };
    t.items.push(item(r));
    towns.set(code, t);
  }
  return [...towns.values()];
}
