import { createHmac } from 'node:crypto';
import { Queue } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import type { Config } from '../config/env.ts';
import { createLogger } from '../core/log.ts';
import { sweepOverdue } from '../store/overdue.ts';
import { notifyWorker } from '../workers/notify.ts';
import { redisConnection } from '../workers/queues.ts';
import { OK, Robot } from './helpers/robots.ts';
import { sleep, WorkerProc } from './helpers/procs.ts';
import { workflowApi } from './helpers/workflow-api.ts';
import { JPEG } from './helpers/hostile.ts';

const PUBLIC = 'https://tuban.example.gov.cn';
const WECOM_KEY = 'a1b2c3d4-0000-4bc4-97a0-0ec2sifa5aaa';
const DING_TOKEN = 'f00dfeedcafe0123456789abcdef0123456789abcdef0123456789abcdef0123';
const DING_SECRET = 'SECc0ffee0123456789abcdef0123456789abcdef0123456789abcdef01234567';

/**
 * Notifications (issue 30) end to end on real PostgreSQL, Redis and HTTP: channels set up by an admin,
 * messages written in the transaction of each change, sent by the BullMQ notify worker to local
 * robots — one that records what it gets, one that fails three times, one that refuses, one that
 * hangs — and a worker process killed while a robot holds its request.
 */
describe('notifications to group robots', () => {
  const h = workflowApi();
  const { call } = h;
  const robots: Robot[] = [];
  const stops: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop();
    for (const r of robots.splice(0)) await r.close();
  });

  const robot = async (behave?: ConstructorParameters<typeof Robot>[0]) => {
    const r = await new Robot(behave).start();
    robots.push(r);
    return r;
  };
  const channel = async (body: Record<string, unknown>) => {
    const r = await call('adm', 'POST', '/api/notify/channels', body);
    expect(r.statusCode, r.body).toBe(201);
    return r.json();
  };
  /** The notify worker in this process, with fast retries; `relay()` queues what the outbox holds. */
  const sender = (over: Partial<Config> = {}) => {
    const config: Config = {
      ...h.run.config,
      TUBAN_PUBLIC_URL: PUBLIC,
      TUBAN_NOTIFY_QUIET: 'none',
      TUBAN_NOTIFY_TIMEOUT_S: 1,
      TUBAN_NOTIFY_BACKOFF_MS: 100,
      TUBAN_NOTIFY_ATTEMPTS: 6,
      ...over,
    };
    const lines: string[] = [];
    const connection = redisConnection(config);
    const qc = redisConnection(config);
    const worker = notifyWorker({
      db: h.run.db,
      config,
      log: createLogger('info', (l) => lines.push(l)),
      connection,
      common: { prefix: config.TUBAN_QUEUE_PREFIX },
    });
    const q = new Queue('notify', { connection: qc, prefix: config.TUBAN_QUEUE_PREFIX });
    stops.push(async () => {
      await worker.close();
      await q.close();
      connection.disconnect();
      qc.disconnect();
    });
    return { lines, relay: () => q.add('relay', {}) };
  };
  const outbox = () => h.run.db('notify_outbox').orderBy('id').select('*');
  const waitFor = async (what: string, test: () => Promise<boolean>, timeoutMs = 30_000) => {
    const t0 = Date.now();
    while (!(await test())) {
      if (Date.now() - t0 > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
      await sleep(100);
    }
  };

  it("tells each town's group and the supervisors' of a bulk dispatch in one message each, with codes, counts and links", async () => {
    const rec = await robot();
    const dq = await channel({
      name: '殿前街道工作群',
      kind: 'wecom',
      webhook: rec.url('/wecom', `key=${WECOM_KEY}`),
      town_code: '350206001',
    });
    await channel({
      name: '禾山街道工作群',
      kind: 'dingtalk',
      webhook: rec.url('/ding', `access_token=${DING_TOKEN}`),
      secret: DING_SECRET,
      town_code: '350206002',
    });
    await channel({ name: '督查科', kind: 'wecom', webhook: rec.url('/sup', `key=${WECOM_KEY}`) });

    // secrets never shown back: not in the answer, the list, nor the audit
    expect(dq.webhook).toBe(`${rec.url('/wecom')}?key=****5aaa`);
    const listed = (await call('adm', 'GET', '/api/notify/channels')).json();
    expect(JSON.stringify(listed)).not.toContain(WECOM_KEY);
    expect(JSON.stringify(listed)).not.toContain(DING_SECRET);
    expect(JSON.stringify(listed)).not.toContain(DING_TOKEN);
    expect(listed.find((c: { name: string }) => c.name === '禾山街道工作群')).toMatchObject({ has_secret: true });
    const audit = JSON.stringify(
      await h.run.db('audit_event').where({ path: '/api/notify/channels' }).select('detail'),
    );
    for (const secret of [WECOM_KEY, DING_SECRET, DING_TOKEN]) expect(audit).not.toContain(secret);
    // only admins see or set channels
    expect((await call('sup', 'GET', '/api/notify/channels')).statusCode).toBe(403);
    expect((await call('dianqian', 'POST', '/api/notify/channels', { name: 'x' })).statusCode).toBe(403);

    // a bulk dispatch of the month: 3 patches in 殿前, 2 in 禾山 — one message per channel, written with the moves
    expect(
      (await call('ana', 'POST', '/api/patches/actions/dispatch', { select: { month: '2024-03' } })).statusCode,
    ).toBe(200);
    const rows = await outbox();
    expect(rows.map((r) => [r.event, r.town_code, r.status])).toEqual([
      ['dispatched', '350206001', 'pending'],
      ['dispatched', '350206002', 'pending'],
      ['dispatched', null, 'pending'],
    ]);
    const s = sender();
    await s.relay();
    await rec.until(3);

    const wecom = rec.at('/wecom');
    expect(wecom).toHaveLength(1);
    expect(wecom[0].query.get('key')).toBe(WECOM_KEY);
    expect(wecom[0].body.msgtype).toBe('markdown');
    const text: string = wecom[0].body.markdown.content;
    expect(text).toContain('新下发图斑 3 个');
    expect(text).toContain('殿前街道');
    for (const code of ['350206-202403-0002', '350206-202403-0003', '350206-202403-0005'])
      expect(text).toContain(`[${code}](${PUBLIC}/#/patch/${code})`);
    expect(text).not.toContain('350206-202403-0001');
    expect(text).toMatch(/核查期限 2024-03-\d\d/);
    expect(wecom[0].headers['idempotency-key']).toBe(rows[0].key);

    // 钉钉: signed as the robot checks it — Base64 HMAC-SHA256 of "timestamp\nsecret" keyed with the secret
    const ding = rec.at('/ding');
    expect(ding).toHaveLength(1);
    const ts = ding[0].query.get('timestamp')!;
    expect(Math.abs(Date.now() - Number(ts))).toBeLessThan(60_000);
    expect(ding[0].query.get('sign')).toBe(
      createHmac('sha256', DING_SECRET).update(`${ts}\n${DING_SECRET}`).digest('base64'),
    );
    expect(ding[0].query.get('access_token')).toBe(DING_TOKEN);
    expect(ding[0].body.markdown.title).toContain('新下发图斑 2 个');
    expect(ding[0].body.markdown.text).toContain('350206-202403-0001');

    const sup: string = rec.at('/sup')[0].body.markdown.content;
    expect(sup).toContain('新下发图斑 5 个');
    expect(sup).toMatch(/殿前街道[\s\S]*禾山街道/);

    // a send-back and an escalation: one message each to the town, one to the supervisors, with the reason
    const OWN = '350206-202403-0002';
    await call('dianqian', 'POST', `/api/patches/${OWN}/evidence?filename=site.jpg`, JPEG, {
      'content-type': 'image/jpeg',
    });
    for (const [who, action, body] of [
      ['dianqian', 'verify', { result: 'illegal', violation: 'construction' }],
      ['dianqian', 'rectify', { measure: 'demolish' }],
    ] as const)
      expect((await call(who, 'POST', `/api/patches/${OWN}/actions/${action}`, body)).statusCode).toBe(200);
    await call('dianqian', 'POST', `/api/patches/${OWN}/evidence?filename=done.jpg`, JPEG, {
      'content-type': 'image/jpeg',
    });
    expect((await call('dianqian', 'POST', `/api/patches/${OWN}/actions/report_rectified`, {})).statusCode).toBe(200);
    expect(
      (await call('sup', 'POST', `/api/patches/${OWN}/actions/send_back`, { reason: '屋顶仍在' })).statusCode,
    ).toBe(200);
    expect(
      (await call('sup', 'POST', '/api/patches/350206-202403-0001/actions/escalate', { reason: '群众多次举报' }))
        .statusCode,
    ).toBe(200);
    await s.relay();
    await rec.until(7);
    const later = rec.received.slice(3).map((r) => `${r.path} ${JSON.stringify(r.body)}`);
    expect(later.filter((b) => b.includes('整改被退回') && b.includes('屋顶仍在') && b.includes(OWN))).toHaveLength(2);
    expect(later.filter((b) => b.includes('挂牌督办') && b.includes('群众多次举报'))).toHaveLength(2);
    expect(later.filter((b) => b.startsWith('/wecom'))).toHaveLength(1); // 殿前 hears of its own patch, not 禾山's

    // relayed again, nothing is sent twice
    await s.relay();
    await sleep(1500);
    expect(rec.received).toHaveLength(7);
    expect((await outbox()).every((r) => r.status === 'sent' && r.attempts === 1)).toBe(true);
  }, 120_000);

  it('the daily sweep tells of deadlines due soon, overdue and listed for supervision, once a day however often it runs', async () => {
    await channel({
      name: '殿前街道工作群',
      kind: 'wecom',
      webhook: 'https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc',
      town_code: '350206001',
    });
    await call('ana', 'POST', '/api/patches/actions/dispatch', { select: { month: '2024-03' } });
    const due = (await call('ana', 'GET', '/api/patches/350206-202403-0002')).json().verify_due;
    await h.run.db('notify_outbox').del();

    h.today = '2024-03-21'; // Thursday: 0002 and 0005 due in two working days, 0003 (farmland, shorter) today
    const sweep = () => sweepOverdue(h.run.db, { ...h.env, noticeDueDays: 2 });
    await sweep();
    await sweep();
    let rows = await outbox();
    expect(rows.map((r) => r.event)).toEqual(['due_soon']);
    const items = rows[0].content.towns[0].items;
    expect(items.map((i: { code: string }) => i.code)).toEqual([
      '350206-202403-0002',
      '350206-202403-0003',
      '350206-202403-0005',
    ]);
    expect(items[0]).toMatchObject({ due, days: 2, deadline: 'verification' });
    expect(items[1]).toMatchObject({ due: '2024-03-21', days: 0 });

    h.today = '2024-03-23'; // Saturday: no reminder on a rest day; 0003 is one working day late
    await sweep();
    rows = await outbox();
    expect(rows.map((r) => r.event)).toEqual(['due_soon', 'overdue']);
    expect(rows[1].content).toMatchObject({ by: 'system', date: '2024-03-23' });
    expect(rows[1].content.towns[0].items).toMatchObject([{ code: '350206-202403-0003', days: 1 }]);

    h.today = '2024-04-08'; // long past: the others overdue, and all listed for supervision by the sweep
    await sweep();
    const once = await outbox();
    await sweep();
    expect(await outbox()).toHaveLength(once.length);
    expect(once.map((r) => r.event)).toEqual(['due_soon', 'overdue', 'overdue', 'escalated']);
    expect(once[2].content.towns[0].items.map((i: { code: string }) => i.code)).toEqual([
      '350206-202403-0002',
      '350206-202403-0005',
    ]);
    expect(once[3].content.towns[0].items).toHaveLength(3);
  }, 120_000);

  it('retries a robot that fails three times and delivers the message once', async () => {
    const flaky = await robot((n) => (n <= 3 ? { status: 502, body: { error: 'bad gateway' } } : OK));
    await channel({ name: '督查科', kind: 'wecom', webhook: flaky.url('/sup', 'key=k') });
    await call('ana', 'POST', '/api/patches/350206-202403-0001/actions/dispatch', {});
    const s = sender();
    await s.relay();
    await waitFor('delivered', async () => (await outbox()).some((r) => r.status === 'sent'));
    await sleep(1000);
    expect(flaky.received).toHaveLength(4);
    const [row] = await outbox();
    expect(row).toMatchObject({ status: 'sent', attempts: 4, in_doubt: false });
    expect(new Set(flaky.received.map((r) => r.headers['idempotency-key']))).toEqual(new Set([row.key]));
    expect(s.lines.filter((l) => l.includes('Notify:Retry'))).toHaveLength(3);
  }, 120_000);

  it('a robot that refuses is not tried again, and the admin is told', async () => {
    const refuser = await robot(() => ({ status: 200, body: { errcode: 93000, errmsg: 'invalid webhook url' } }));
    const gone = await robot(() => ({ status: 404, body: { error: 'no such robot' } }));
    await channel({
      name: '殿前街道工作群',
      kind: 'wecom',
      webhook: refuser.url('/w', 'key=old'),
      town_code: '350206001',
    });
    await channel({
      name: '禾山街道工作群',
      kind: 'wecom',
      webhook: gone.url('/w', 'key=old'),
      town_code: '350206002',
    });
    await call('ana', 'POST', '/api/patches/actions/dispatch', { select: { month: '2024-03' } });
    const s = sender();
    await s.relay();
    await waitFor('refused', async () => (await outbox()).every((r) => r.status === 'refused'));
    await s.relay();
    await sleep(1500);
    expect(refuser.received).toHaveLength(1);
    expect(gone.received).toHaveLength(1);
    const channels = (await call('adm', 'GET', '/api/notify/channels')).json();
    expect(channels[0].last_error).toMatch(/refused: errcode 93000: invalid webhook url/);
    expect(channels[1].last_error).toMatch(/refused: HTTP 404/);
    expect(channels[0].messages).toEqual({ refused: 1 });
    expect((await call(null, 'GET', '/api/health')).json().notifications).toEqual({ refused: 2, failed: 0 });
    const refused = (await call('adm', 'GET', '/api/notify/outbox?status=refused')).json();
    expect(refused).toHaveLength(2);
    expect(s.lines.filter((l) => l.includes('Notify:Refused'))).toHaveLength(2);
    // a new webhook is a fresh start
    const fixed = (
      await call('adm', 'PATCH', `/api/notify/channels/${channels[0].id}`, { webhook: refuser.url('/w', 'key=new') })
    ).json();
    expect(fixed.last_error).toBeNull();
  }, 120_000);

  it('a robot that hangs is given up on and tried again, the retry marked as a resend with the same key', async () => {
    let hanging = true;
    const slow = await robot(() => (hanging ? 'hang' : OK));
    await channel({ name: '督查科', kind: 'dingtalk', webhook: slow.url('/d', 'access_token=t') });
    await call('ana', 'POST', '/api/patches/350206-202403-0001/actions/dispatch', {});
    const s = sender({ TUBAN_NOTIFY_TIMEOUT_S: 0.5, TUBAN_NOTIFY_BACKOFF_MS: 300 });
    await s.relay();
    await slow.until(1);
    hanging = false;
    await waitFor('delivered', async () => (await outbox()).some((r) => r.status === 'sent'));
    const [row] = await outbox();
    expect(row).toMatchObject({ status: 'sent', attempts: 2, in_doubt: true });
    expect(slow.received).toHaveLength(2);
    expect(slow.received[0].headers['idempotency-key']).toBe(slow.received[1].headers['idempotency-key']);
    expect(slow.received[0].body.markdown.text).not.toContain('补发');
    expect(slow.received[1].body.markdown.text).toContain(
      `补发：上次发送未确认送达，如已收到请忽略（消息编号 ${row.id}）`,
    );
    expect(s.lines.some((l) => l.includes('Notify:Retry') && l.includes('no answer within 0.5 s'))).toBe(true);
  }, 120_000);

  it('a worker killed mid-send: nothing answered is sent again, nothing is lost, the cut-off message goes again as a resend', async () => {
    const rec = await robot();
    let hold = true;
    const slow = await robot(() => (hold ? 'hang' : OK));
    await channel({ name: '殿前街道工作群', kind: 'wecom', webhook: rec.url('/dq', 'key=k1'), town_code: '350206001' });
    await channel({
      name: '禾山街道工作群',
      kind: 'wecom',
      webhook: slow.url('/hs', 'key=k2'),
      town_code: '350206002',
    });
    await call('ana', 'POST', '/api/patches/actions/dispatch', { select: { month: '2024-03' } });
    const env = {
      ...h.run.env,
      TUBAN_PUBLIC_URL: PUBLIC,
      TUBAN_NOTIFY_QUIET: 'none',
      TUBAN_NOTIFY_TIMEOUT_S: '60',
      TUBAN_NOTIFY_RELAY_MS: '500',
      TUBAN_LOCK_MS: '3000',
      TUBAN_STALLED_INTERVAL_MS: '1000',
    };
    const first = new WorkerProc(env);
    stops.push(async () => first.kill('SIGKILL'));
    await rec.until(1);
    await slow.until(1); // the 禾山 message is posted, its answer held
    await waitFor('殿前 answered', async () => (await outbox())[0].status === 'sent');
    first.kill('SIGKILL');
    await first.exited();
    expect((await outbox()).map((r) => r.status)).toEqual(['sent', 'sending']);

    hold = false;
    const second = new WorkerProc(env);
    stops.push(async () => {
      second.kill('SIGTERM');
      await second.exited();
    });
    await slow.until(2, 90_000);
    await waitFor('sent', async () => (await outbox()).every((r) => r.status === 'sent'));
    await sleep(2000); // relays keep running: still nothing twice
    expect(rec.received).toHaveLength(1);
    expect(slow.received).toHaveLength(2);
    expect(slow.received[1].headers['idempotency-key']).toBe(slow.received[0].headers['idempotency-key']);
    expect(slow.received[1].body.markdown.content).toContain('补发');
    const rows = await outbox();
    expect(rows[1]).toMatchObject({ status: 'sent', attempts: 2, in_doubt: true });
  }, 180_000);
});
