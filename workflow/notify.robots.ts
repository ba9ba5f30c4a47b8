import { createHmac } from 'node:crypto';
import { say, type Said } from '../i18n/say.ts';

/**
 * Group robots a bureau's people read: 企业微信 (WeCom) and 钉钉 (DingTalk) webhooks. Both take a JSON
 * POST and answer HTTP 200 with `{errcode, errmsg}`, errcode 0 when the message went to the group; a
 * bad key, a robot removed from its group, a wrong signature or a message its keyword filter rejects
 * all come back as 200 with another errcode, so the answer's body decides, not the status alone.
 */
export const ROBOT_KINDS = ['wecom', 'dingtalk'] as const;
export type RobotKind = (typeof ROBOT_KINDS)[number];

/** WeCom markdown takes at most 4,096 bytes; DingTalk more. Messages are cut to fit the smaller, with room to spare. */
export const MESSAGE_MAX_BYTES = 3800;

export interface RobotMessage {
  /** One line: the group's notification preview (DingTalk's title). */
  title: string;
  /** The message in the robots' markdown subset: headings, bold, links, lists. */
  markdown: string;
}

export interface RobotRequest {
  url: string;
  body: string;
}

/**
 * The request for one message. DingTalk's 加签: the URL gets `timestamp` (ms) and `sign`, the Base64
 * HMAC-SHA256 of `timestamp + "\n" + secret` keyed with the secret; the robot refuses a timestamp more
 * than an hour off, so the request is signed when it is sent, not when the message was written.
 */
export function robotRequest(
  kind: RobotKind,
  webhook: string,
  secret: string | null,
  msg: RobotMessage,
  now = Date.now(),
): RobotRequest {
  if (kind === 'wecom')
    return { url: webhook, body: JSON.stringify({ msgtype: 'markdown', markdown: { content: msg.markdown } }) };
  const url = new URL(webhook);
  if (secret) {
    const sign = createHmac('sha256', secret).update(`${now}\n${secret}`).digest('base64');
    url.searchParams.set('timestamp', String(now));
    url.searchParams.set('sign', sign);
  }
  return {
    url: url.toString(),
    body: JSON.stringify({ msgtype: 'markdown', markdown: { title: msg.title, text: msg.markdown } }),
  };
}

/** The errcodes that mean "too many messages this minute" (both robots take 20 a minute): try again later. */
const RATE_LIMITED = new Set([45009, 130101]);

/**
 * What an answer means: `sent`; `retry` (the robot is busy, down or slow: try again with backoff);
 * `refused` (the robot will not take this message from us as configured: a bad key, a wrong signature,
 * a keyword filter; trying again changes nothing, the admin must look).
 */
export type RobotVerdict = { outcome: 'sent' } | { outcome: 'retry' | 'refused'; reason: string };

export function judgeAnswer(status: number, body: string): RobotVerdict {
  const text = body.slice(0, 300);
  if (status === 429 || status === 408 || status >= 500) return { outcome: 'retry', reason: `HTTP ${status}: ${text}` };
  if (status < 200 || status >= 300) return { outcome: 'refused', reason: `HTTP ${status}: ${text}` };
  let answer: { errcode?: unknown; errmsg?: unknown };
  try {
    answer = JSON.parse(body) as typeof answer;
  } catch {
    return { outcome: 'retry', reason: `HTTP ${status}, an answer that is not JSON: ${text}` };
  }
  const code = Number(answer?.errcode ?? 0);
  if (code === 0) return { outcome: 'sent' };
  const reason = `errcode ${code}: ${(typeof answer.errmsg === 'string' ? answer.errmsg : JSON.stringify(answer.errmsg ?? '')).slice(0, 200)}`;
  return RATE_LIMITED.has(code) || code === -1 ? { outcome: 'retry', reason } : { outcome: 'refused', reason };
}

/**
 * A webhook as the admin may be shown it: scheme, host and path, every query value hidden but its last
 * four characters (the WeCom key and the DingTalk access_token are in the query).
 */
export function maskWebhook(webhook: string): string {
  try {
    const u = new URL(webhook);
    const q = [...u.searchParams].map(([k, v]) => `${k}=${v.length > 8 ? `****${v.slice(-4)}` : '****'}`);
    return `${u.protocol}//${u.host}${u.pathname}${q.length ? `?${q.join('&')}` : ''}`;
  } catch {
    return '****';
  }
}

/**
 * Why a webhook cannot be used, or null: an absolute https URL (http only to this machine: a relay on
 * localhost, the tests' robots), no user or password in it, at most 2,000 characters.
 */
export function webhookProblem(webhook: string): Said | null {
  if (webhook.length > 2000) return say('notify_webhook_long');
  let u: URL;
  try {
    u = new URL(webhook);
  } catch {
    return say('notify_webhook_not_url');
  }
  if (u.username || u.password) return say('notify_webhook_userinfo');
  if (u.protocol === 'https:') return null;
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname);
  if (u.protocol === 'http:' && loopback) return null;
  return u.protocol === 'http:' ? say('notify_webhook_http') : say('notify_webhook_scheme', { scheme: u.protocol });
}

/**
 * When quiet hours that hold now end (a Date), or null when it is not quiet. `spec` is `HH:MM-HH:MM`
 * in city time (UTC + offsetH), start inclusive, end exclusive; a start after the end spans midnight
 * (22:00-07:30); `none` or an empty window is never quiet.
 */
export function quietUntil(spec: string, now: Date, offsetH: number): Date | null {
  const m = /^(\d\d):(\d\d)-(\d\d):(\d\d)$/.exec(spec);
  if (!m) return null;
  const start = Number(m[1]) * 60 + Number(m[2]);
  const end = Number(m[3]) * 60 + Number(m[4]);
  if (start === end) return null;
  const local = new Date(now.getTime() + offsetH * 3600_000);
  const minute = local.getUTCHours() * 60 + local.getUTCMinutes();
  const quiet = start < end ? minute >= start && minute < end : minute >= start || minute < end;
  if (!quiet) return null;
  const minutesLeft = (end - minute + 1440) % 1440;
  const endLocal =
    Date.UTC(local.getUTCFullYear(), local.getUTCMonth(), local.getUTCDate()) + (minute + minutesLeft) * 60_000;
  return new Date(endLocal - offsetH * 3600_000);
}
