import { MESSAGE_MAX_BYTES, type RobotMessage } from './notify.robots.ts';

/** What a town's group and the supervisors' group are told of. */
export const NOTICE_EVENTS = ['dispatched', 'due_soon', 'overdue', 'sent_back', 'escalated'] as const;
export type NoticeEvent = (typeof NOTICE_EVENTS)[number];

/** One patch in a message: its code and what the event says of it. */
interface NoticeItem {
  code: string;
  area_m2?: number;
  /** The deadline now running (verification or rectification). */
  due?: string | null;
  deadline?: 'verification' | 'rectification';
  /** Working days left (due soon) or late (overdue). */
  days?: number;
  /** A send-back's or an escalation's reason. */
  reason?: string;
}

export interface NoticeTown {
  code: string;
  name: string;
  items: NoticeItem[];
}

/**
 * A message as the outbox keeps it: what happened, to which patches, by town. It is put into words
 * when it is sent (`noticeMessage`), with the public address of that day's configuration.
 */
export interface NoticeContent {
  event: NoticeEvent | 'test';
  /** The city date of the change. */
  date: string;
  /** Who made the change (a user name, or `system` for the daily sweep). */
  by: string;
  towns: NoticeTown[];
  /** due_soon: the window in working days. */
  within_days?: number;
  /** test: the channel's name. */
  channel?: string;
}

const count = (c: NoticeContent) => c.towns.reduce((n, t) => n + t.items.length, 0);

const TITLES: Record<NoticeContent['event'], (n: number, c: NoticeContent) => string> = {
  dispatched: (n) => `新下发图斑 ${n} 个，请按期到现场核查`,
  due_soon: (n, c) => `${n} 个图斑的期限在 ${c.within_days ?? ''} 个工作日内到期`,
  overdue: (n) => `${n} 个图斑已逾期`,
  sent_back: (n) => `${n} 个图斑的整改被退回，请重新整改`,
  escalated: (n) => `${n} 个图斑已挂牌督办`,
  test: () => '测试消息：本群已接入 tuban 图斑通知',
};

const DEADLINE = { verification: '核查期限', rectification: '整改期限' } as const;

/** One patch as a list line: its code (a link to its page when the public address is known) and the event's facts. */
function itemLine(event: NoticeContent['event'], it: NoticeItem, link: (code: string) => string | null): string {
  const url = link(it.code);
  const facts: string[] = [];
  if (it.area_m2 !== undefined) facts.push(`${Math.round(it.area_m2)} m²`);
  if (it.due) facts.push(`${DEADLINE[it.deadline ?? 'verification']} ${it.due}`);
  if (event === 'due_soon' && it.days !== undefined) facts.push(it.days === 0 ? '今日到期' : `剩 ${it.days} 个工作日`);
  if (event === 'overdue' && it.days !== undefined) facts.push(`已逾期 ${it.days} 个工作日`);
  if (it.reason) facts.push(`原因：${it.reason.replace(/\s+/g, ' ').slice(0, 100)}`);
  return `- ${url ? `[${it.code}](${url})` : it.code}${facts.length ? `：${facts.join('，')}` : ''}`;
}

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

/**
 * A message in Chinese for a group robot: a heading with the count, the date and who acted, then town by
 * town the patches with what the event says of each, each code a link to its page; cut to fit the
 * robots' size limit with how many more there are and a link to the to-do list. A resend after a try
 * whose answer never came says so, with the message's number, so a group that got the first one can
 * tell.
 */
export function noticeMessage(
  c: NoticeContent,
  opts: { publicUrl?: string | null; resend?: boolean; number?: string } = {},
): RobotMessage {
  const base = opts.publicUrl?.replace(/\/+$/, '') || null;
  const link = (code: string) => (base ? `${base}/#/patch/${encodeURIComponent(code)}` : null);
  const title = TITLES[c.event](count(c), c);
  const head = [
    `### 【图斑】${title}`,
    ...(opts.resend ? [`> 补发：上次发送未确认送达，如已收到请忽略（消息编号 ${opts.number ?? ''}）`] : []),
    `${c.date} · ${c.by === 'system' ? '系统每日巡检' : c.by}`,
  ];
  const tail = base ? `\n[打开待办](${base}/#/todo)` : '';
  if (c.event === 'test') {
    const md = [...head, `通道：${c.channel ?? ''}`].join('\n') + tail;
    return { title, markdown: md };
  }
  let md = head.join('\n');
  let left = count(c);
  fill: for (const town of c.towns) {
    const section = `\n\n**${town.name}**（${town.code}）${town.items.length} 个`;
    if (bytes(md + section + tail) > MESSAGE_MAX_BYTES - 120) break;
    md += section;

    for (const it of town.items) {
      const line = `\n${itemLine(c.event, it, link)}`;
      if (bytes(md + line + tail) > MESSAGE_MAX_BYTES - 120) break fill;
      md += line;
      left -= 1;
    }
  }
  if (left > 0) md += `\n\n……另有 ${left} 个，见待办列表`;
  return { title, markdown: md + tail };
}
