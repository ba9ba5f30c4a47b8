import { spawnSync } from 'node:child_process';
import sharp from 'sharp';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildServer } from '../server/app.ts';
import { safeName } from '../export/names.ts';
import { createUser, issueToken } from '../store/users.ts';
import { addWorkingDays, workingDaysBetween } from '../workflow/calendar.ts';
import { DEFAULT_POLICY } from '../workflow/lifecycle.ts';
import { runBatch } from './helpers/batch.ts';
import { freshRun, type Run } from './helpers/run.ts';
import { cleanup } from './helpers/services.ts';
import { apiCaller, testWorkflowEnv } from './helpers/api.ts';
import { createLogger } from '../core/log.ts';
import { loadManifest } from '../pipeline/io/model.manifest.ts';
import { launchBatch } from '../workers/batch.launch.ts';
import { exportPatches } from '../store/export.ts';
import { registerImagery } from '../store/imagery.ts';
import { openDb } from '../store/db.ts';
import { encodeGeoTiff } from '../pipeline/io/geotiff.write.ts';
import { EPSG_4548 } from '../core/crs.ts';

const JPEG = Buffer.from([
  0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 0xff, 0xd9,
]);
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Every file under `dir`, recursively, as paths relative to it. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

/**
 * The security review's findings (issue 17), each replayed as an attack against `tuban serve` on
 * real PostGIS: these failed before the fixes and guard them now.
 */
describe('security: hostile town users', () => {
  const fixturesDir = inject('fixturesDir');
  let run: Run;
  let app: FastifyInstance;
  let today = '2024-03-18';
  const env = testWorkflowEnv(() => today);
  const token: Record<string, string> = {};
  // town 350206001 (殿前) has 0002, 0003, 0005; 350206002 (禾山) has 0001, 0004
  const OWN = '350206-202403-0002';
  const call = apiCaller(() => app, token);

  const logged: Record<string, unknown>[] = [];
  beforeAll(async () => {
    run = await freshRun(fixturesDir);
    await runBatch(run.db, run.config, '2024-03', '2024-02');
    await createUser(run.db, { username: 'ana', role: 'analyst' });
    await createUser(run.db, { username: 'sup', role: 'supervisor' });
    await createUser(run.db, { username: 'dianqian', role: 'town', townCode: '350206001' });
    await createUser(run.db, { username: 'heshan', role: 'town', townCode: '350206002' });
    await createUser(run.db, { username: 'root', role: 'admin' });
    for (const u of ['ana', 'sup', 'dianqian', 'heshan', 'root']) token[u] = (await issueToken(run.db, u)).token;
    app = await buildServer({
      db: run.db,
      config: run.config,
      env,
      log: createLogger('error', (l) => logged.push(JSON.parse(l))),
    });
    // a route that fails the way a bug would, to see what a 500 leaves behind
    app.get('/api/test-crash', async () => {
      throw new Error('a bug');
    });
  });
  afterAll(async () => {
    await app?.close();
    if (run) await cleanup(run.db, run.config);
  });

  /** Dispatch, verify illegal: the patch is ready for rectify. */
  async function toIllegal(code: string, town: string) {
    expect((await call('ana', 'POST', `/api/patches/${code}/actions/dispatch`, {})).statusCode).toBe(200);
    const v = await call(town, 'POST', `/api/patches/${code}/actions/verify`, {
      result: 'illegal',
      violation: 'construction',
    });
    expect(v.statusCode, v.body).toBe(200);
  }

  it('finding 1 (High): a town in the export query never reaches a path; exports leave no file behind', async () => {
    // another town's evidence file is the target, as in the review
    const up = await call('heshan', 'POST', `/api/patches/350206-202403-0001/evidence?filename=site.jpg`, JPEG, {
      'content-type': 'image/jpeg',
    });
    expect(up.statusCode).toBe(201);
    // the file this upload stored (other scenarios may have stored more)
    const stored = (await run.db('evidence').where({ id: up.json().id }).first('stored_as')).stored_as as string;
    const evidence = filesUnder(join(run.config.dataDir, 'evidence')).filter((f) => f === stored);
    expect(evidence).toHaveLength(1);
    const before = readFileSync(evidence[0]);
    const target = evidence[0].replace(/\.jpg$/, '');
    const escape = `tuban-escape-${process.pid}`;
    const escapes = [
      `../../../../../../../../tmp/${escape}`,
      '../../../../x',
      `../../../../../../../..${target}`,
      `../evidence/${target.split('/').slice(-2).join('/')}`,
      'a/b',
      '..',
      'x\r\nSet-Cookie: a=b',
      'x\u0000y',
    ];
    for (const town of escapes) {
      const r = await call('dianqian', 'GET', `/api/export?month=2024-03&format=csv&town=${encodeURIComponent(town)}`);
      expect(r.statusCode, town).toBe(400);
      expect(r.json().message, town).toMatch(/town/);
    }
    expect(sha256(readFileSync(evidence[0]))).toBe(sha256(before));
    expect(existsSync(`/tmp/${escape}.csv`)).toBe(false);

    // a good export streams, is named from a sanitised town, and leaves nothing on disk
    const ok = await call('dianqian', 'GET', '/api/export?month=2024-03&format=csv&town=350206001');
    expect(ok.statusCode, ok.body).toBe(200);
    expect(ok.headers['content-disposition']).toMatch(/filename="patches-2024-03-350206001\.csv"/);
    expect(ok.body).toContain('350206-202403-0002');
    const shp = await call('dianqian', 'GET', '/api/export?month=2024-03&format=shp');
    expect(shp.statusCode, shp.body).toBe(200);
    expect(shp.rawPayload.subarray(0, 2).toString()).toBe('PK');
    // the folder goes when the response stream closes, which may be just after inject resolves
    await expect.poll(() => filesUnder(join(run.config.dataDir, 'tmp')), { timeout: 60_000 }).toEqual([]);
  });

  it('finding 1: names from the town layer are made safe before they name a zip folder or a file', () => {
    expect(safeName('../../etc/passwd')).toBe('etc_passwd');
    expect(safeName('350206001_殿前街道')).toBe('350206001_殿前街道');
    expect(safeName('..')).toBe('export');
    expect(safeName('a\\b\r\nc')).toBe('a_b_c');
    expect(safeName('.hidden')).toBe('hidden');
  });

  it('finding 2 (High): a far-future due is refused, and nothing loops over days without a bound', async () => {
    const code = '350206-202403-0005';
    today = '2024-03-18';
    await toIllegal(code, 'dianqian');
    for (const due of ['9999-12-31', '2101-01-01', '2027-02-30', '2024-13-01', '24-03-30']) {
      const r = await call('dianqian', 'POST', `/api/patches/${code}/actions/rectify`, { measure: 'demolish', due });
      expect(r.statusCode, due).toBe(400);
      expect(r.json().message, due).toMatch(/due/);
    }
    const r = await call('dianqian', 'POST', `/api/patches/${code}/actions/rectify`, { measure: 'demolish' });
    expect(r.statusCode, r.body).toBe(200);
    // a deadline stored before the fix: extend answers at once with a 400 instead of hanging the server
    await run.db('patch').where({ code }).update({ rectify_due: '9999-12-31' });
    const t0 = Date.now();
    const e = await call('sup', 'POST', `/api/patches/${code}/actions/extend`, {
      working_days: 5,
      reason: '台风',
      request_key: 'typhoon-far-future',
    });
    expect(e.statusCode, e.body).toBe(400);
    expect(e.json().message).toMatch(/9999-12-31/);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect((await call(null, 'GET', '/api/health')).statusCode).toBe(200);
    // the calendar itself: bounded whatever it is given
    expect(() => addWorkingDays(env.calendar, '9999-12-30', 5)).toThrow(/outside 2000-01-01\.\.2100-12-31/);
    expect(() => addWorkingDays(env.calendar, '2100-12-30', 5)).toThrow(/past 2100-12-31/);
    expect(workingDaysBetween(env.calendar, '2100-12-01', '9999-12-31')).toBeLessThan(30);
    expect(workingDaysBetween(env.calendar, '0001-01-01', '2000-01-10')).toBeLessThan(10);
  });

  it('finding 2: the CLI refuses dates outside the window or not on the calendar, exit 2, at once', () => {
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, ['bin/tuban.mjs', ...args], { env: run.env, encoding: 'utf8', timeout: 600_000 });
    for (const date of ['9999-12-31', '2024-02-30']) {
      const sweep = cli('deadlines', 'sweep', '--date', date);
      expect(sweep.status, sweep.stderr).toBe(2);
      expect(sweep.stderr).toMatch(new RegExp(`--date: .*${date}`));
    }
    const reg = cli(
      'imagery',
      'register',
      '--month',
      '2024-02',
      '--date',
      '2024-02-30',
      join(fixturesDir, 'imagery', '2024-02'),
    );
    expect(reg.status, reg.stderr).toBe(2);
    expect(reg.stderr).toMatch(/--date: 2024-02-30 is not a calendar date/);
  });

  it('finding 3 (Medium): a town cannot set a deadline later than the policy; an earlier one is kept', async () => {
    const code = '350206-202403-0001'; // 禾山
    today = '2024-03-18';
    await toIllegal(code, 'heshan');
    const cls = (await call('heshan', 'GET', `/api/patches/${code}`)).json()
      .class as keyof typeof DEFAULT_POLICY.rectifyDays;
    const latest = addWorkingDays(env.calendar, today, DEFAULT_POLICY.rectifyDays[cls]);
    const late = await call('heshan', 'POST', `/api/patches/${code}/actions/rectify`, {
      measure: 'demolish',
      due: '2024-12-31',
    });
    expect(late.statusCode).toBe(400);
    expect(late.json().message).toContain(`later than the policy allows`);
    expect(late.json().message).toContain(latest);
    const ok = await call('heshan', 'POST', `/api/patches/${code}/actions/rectify`, {
      measure: 'demolish',
      due: '2024-03-29',
    });
    expect(ok.statusCode, ok.body).toBe(200);
    expect(ok.json().rectify_due).toBe('2024-03-29');
  });

  /** A second server on the same database, listening on loopback, with its own export limits and log. */
  async function listening(exportLimits: { running: number; waiting: number }, lines: Record<string, unknown>[] = []) {
    const srv = await buildServer({
      db: run.db,
      config: {
        ...run.config,
        TUBAN_EXPORT_CONCURRENCY: exportLimits.running,
        TUBAN_EXPORT_QUEUE: exportLimits.waiting,
      },
      env,
      log: createLogger('info', (l) => lines.push(JSON.parse(l))),
    });
    const base = await srv.listen({ host: '127.0.0.1', port: 0 });
    return {
      srv,
      base,
      pdf: (signal?: AbortSignal) =>
        fetch(`${base}/api/export?month=2024-03&format=pdf`, {
          headers: { authorization: `Bearer ${token.ana}` },
          signal,
        }),
    };
  }

  it('finding 4 (Medium): 40 concurrent PDF exports leave /api/health answering within 1 s; the line is bounded', async () => {
    const { srv, base, pdf } = await listening({ running: 2, waiting: 8 });
    try {
      const health: number[] = [];
      const rss0 = process.memoryUsage().rss;
      let rssPeak = rss0;
      let loading = true;
      const poll = (async () => {
        while (loading) {
          const t0 = performance.now();
          const h = await fetch(`${base}/api/health`, { signal: AbortSignal.timeout(30_000) });
          expect(h.status).toBe(200);
          await h.json();
          health.push(performance.now() - t0);
          rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
      const results = await Promise.all(
        Array.from({ length: 40 }, async () => {
          const r = await pdf();
          return {
            status: r.status,
            retryAfter: r.headers.get('retry-after'),
            body: Buffer.from(await r.arrayBuffer()),
          };
        }),
      );
      loading = false;
      await poll;
      const made = results.filter((r) => r.status === 200);
      const refused = results.filter((r) => r.status === 503);
      expect(made.length + refused.length).toBe(40);
      // two run, eight wait: at least those ten are made; the rest are told when to come back
      expect(made.length).toBeGreaterThanOrEqual(10);
      expect(refused.length).toBeGreaterThan(0);
      for (const r of made) expect(r.body.subarray(0, 5).toString()).toBe('%PDF-');
      for (const r of refused) {
        expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(5);
        expect(JSON.parse(r.body.toString()).message).toMatch(/busy .* try again in \d+ s/);
      }
      console.log(
        `40 PDF exports: ${made.length} made, ${refused.length} refused; /api/health ${health.length} polls, slowest ${Math.max(...health).toFixed(0)} ms; RSS +${((rssPeak - rss0) / 2 ** 20).toFixed(0)} MB`,
      );
      expect(health.length).toBeGreaterThan(2);
      expect(Math.max(...health)).toBeLessThan(1000);
    } finally {
      await srv.close();
    }
    await expect.poll(() => filesUnder(join(run.config.dataDir, 'tmp')), { timeout: 60_000 }).toEqual([]);
  });

  it('finding 4: a client that goes away leaves the line, and its export is stopped', async () => {
    const lines: Record<string, unknown>[] = [];
    const { srv, base, pdf } = await listening({ running: 1, waiting: 4 }, lines);
    const exports = async () =>
      (await (await fetch(`${base}/api/health`)).json()).exports as { running: number; waiting: number };
    try {
      const first = pdf();
      await expect.poll(exports, { timeout: 60_000, interval: 5 }).toMatchObject({ running: 1 });
      const gone = [1, 2, 3].map(() => {
        const ac = new AbortController();
        return { ac, res: pdf(ac.signal).catch((err: Error) => err) };
      });
      await expect.poll(exports, { timeout: 60_000, interval: 5 }).toMatchObject({ waiting: 3 });
      for (const g of gone) g.ac.abort();
      for (const g of gone) expect(await g.res).toBeInstanceOf(Error);
      await expect.poll(exports, { timeout: 60_000 }).toMatchObject({ waiting: 0 });
      const made = await first;
      expect(made.status).toBe(200);
      expect(
        Buffer.from(await made.arrayBuffer())
          .subarray(0, 5)
          .toString(),
      ).toBe('%PDF-');
      await expect
        .poll(() => lines.filter((l) => l.event === 'Export:Stopped' && /went away/.test(String(l.reason))).length, {
          timeout: 30_000,
        })
        .toBe(3);
      await expect.poll(exports, { timeout: 60_000 }).toEqual({ running: 0, waiting: 0 });
    } finally {
      await srv.close();
    }
    // an export already stopped writes nothing
    const ac = new AbortController();
    ac.abort(new Error('stopped by the test'));
    const out = join(run.config.dataDir, 'tmp-stopped.pdf');
    await expect(
      exportPatches(run.db, env, {
        month: '2024-03',
        format: 'pdf',
        outPath: out,
        storageSrid: run.config.TUBAN_STORAGE_SRID,
        signal: ac.signal,
      }),
    ).rejects.toThrow(/stopped by the test/);
    expect(existsSync(out)).toBe(false);
  });

  /** The audit rows and patch events of one patch's notes path, newest last. */
  async function trail(code: string) {
    const audit = await run.db('audit_event').where('path', `/api/patches/${code}/notes`).orderBy('id');
    const events = await run
      .db('patch_event as e')
      .join('patch as p', 'p.id', 'e.patch_id')
      .where({ 'p.code': code, 'e.type': 'note' })
      .orderBy('e.id')
      .select('e.*');
    return { audit, events };
  }

  it('finding 5 (Medium): a body nested a million deep is audited like any other, with its change', async () => {
    const before = await trail(OWN);
    const deep = `{"text":"现场已拆除一半","extra":${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}}`;
    const r = await call('dianqian', 'POST', `/api/patches/${OWN}/notes`, deep, { 'content-type': 'application/json' });
    expect(r.statusCode, r.body).toBe(201);
    const after = await trail(OWN);
    expect(after.events.length).toBe(before.events.length + 1);
    expect(after.audit.length).toBe(before.audit.length + 1);
    const row = after.audit.at(-1);
    expect(row).toMatchObject({ username: 'dianqian', method: 'POST', status: 201 });
    expect(row.detail.body.fields).toEqual({ text: '现场已拆除一半', extra: { type: 'array', items: 1 } });
  });

  it('finding 5: the audit row and the change are one transaction: no row, no change', async () => {
    const marker = `audit-refused-${process.pid}-${Date.now()}`;
    // the database refuses this one audit row (as a full disk or a lost connection would)
    await run.db.raw(`alter table audit_event add constraint "${marker}" check (detail::text not like '%${marker}%')`);
    try {
      const before = await trail(OWN);
      const r = await call('dianqian', 'POST', `/api/patches/${OWN}/notes`, { text: marker });
      expect(r.statusCode).toBe(500);
      const after = await trail(OWN);
      expect(after.events.length).toBe(before.events.length); // the note went with its audit row
      expect(after.audit.length).toBe(before.audit.length);
      // the refusal's own row, written just after the response, could not be written either, and the log says so
      await expect
        .poll(() => logged.some((l) => l.event === 'Audit:WriteFailed' && String(l.path).includes(OWN)), {
          timeout: 60_000,
        })
        .toBe(true);
    } finally {
      await run.db.raw(`alter table audit_event drop constraint "${marker}"`);
    }
    expect(logged.filter((l) => l.event === 'Audit:NotInTransaction')).toEqual([]);
  });

  it('finding 8 (Medium): the audit keeps a bounded summary, never the body', async () => {
    const junk = 'x'.repeat(11 * 2 ** 20);
    const many = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`f${i}`, i]));
    for (const body of [
      { text: 'ok', junk },
      { text: 'ok', ...many },
      { text: 'ok', password: 'hunter2-secret' },
    ]) {
      const before = await trail(OWN);
      const r = await call('dianqian', 'POST', `/api/patches/${OWN}/notes`, body);
      expect(r.statusCode, r.body.slice(0, 200)).toBe(201);
      const row = (await trail(OWN)).audit.at(-1);
      expect(Number(row.id)).toBeGreaterThan(Number(before.audit.at(-1)?.id ?? 0));
      const stored = JSON.stringify(row.detail);
      expect(stored.length).toBeLessThan(12_000);
      expect(stored).not.toContain('hunter2');
    }
    const rows = (await trail(OWN)).audit.slice(-3).map((r) => r.detail.body);
    expect(rows[0].fields.junk).toMatchObject({ chars: 11 * 2 ** 20, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(rows[1].more_fields).toBe(5001 - 30);
    expect(rows[2].fields.password).toEqual({ redacted: true });
  });

  it('finding 7 (Medium): tokens expire; admins revoke them, disable users and set passwords, by API and CLI', async () => {
    await createUser(run.db, { username: 'clerk', role: 'town', townCode: '350206002', password: 'clerk-first-pass' });
    const loginAs = (password: string) => call(null, 'POST', '/api/login', { username: 'clerk', password });
    const as = (t: string) => app.inject({ method: 'GET', url: '/api/me', headers: { authorization: `Bearer ${t}` } });

    // a login's token lives TUBAN_TOKEN_DAYS (30 by default), then stops working
    const first = await loginAs('clerk-first-pass');
    expect(first.statusCode, first.body).toBe(200);
    const days = (Date.parse(first.json().expires_at) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29.9);
    expect(days).toBeLessThanOrEqual(30);
    expect((await as(first.json().token)).statusCode).toBe(200);
    await run
      .db('api_token')
      .where('token_hash', createHash('sha256').update(first.json().token).digest('hex'))
      .update({ expires_at: run.db.raw("now() - interval '1 second'") });
    expect((await as(first.json().token)).statusCode).toBe(401);

    // revoke: every session ends
    const a = (await loginAs('clerk-first-pass')).json().token;
    const b = (await loginAs('clerk-first-pass')).json().token;
    expect((await call('heshan', 'POST', '/api/users/clerk/revoke')).statusCode).toBe(403);
    const revoked = await call('root', 'POST', '/api/users/clerk/revoke');
    expect(revoked.statusCode, revoked.body).toBe(200);
    expect(revoked.json().revoked).toBe(2);
    expect((await as(a)).statusCode).toBe(401);
    expect((await as(b)).statusCode).toBe(401);

    // disable: no login, tokens gone; enable lets them back
    const c = (await loginAs('clerk-first-pass')).json().token;
    expect((await call('root', 'POST', '/api/users/clerk/disable')).json()).toMatchObject({
      disabled: true,
      revoked: 1,
    });
    expect((await as(c)).statusCode).toBe(401);
    expect((await loginAs('clerk-first-pass')).statusCode).toBe(401);
    expect((await call('root', 'POST', '/api/users/root/disable')).statusCode).toBe(400);
    expect((await call('root', 'POST', '/api/users/clerk/enable')).statusCode).toBe(200);

    // a new password ends the sessions made with the old one; the policy holds here too
    const d = (await loginAs('clerk-first-pass')).json().token;
    expect((await call('root', 'POST', '/api/users/clerk/password', { password: 'short' })).statusCode).toBe(400);
    const set = await call('root', 'POST', '/api/users/clerk/password', { password: 'clerk-second-pass' });
    expect(set.statusCode, set.body).toBe(200);
    expect((await as(d)).statusCode).toBe(401);
    expect((await loginAs('clerk-first-pass')).statusCode).toBe(401);
    expect((await loginAs('clerk-second-pass')).statusCode).toBe(200);
    const listed = (await call('root', 'GET', '/api/users'))
      .json()
      .find((u: { username: string }) => u.username === 'clerk');
    expect(listed).toMatchObject({ disabled: false, activeTokens: 1 });
    // the audit has each admin act, with the password only as "redacted"
    const acts = await run
      .db('audit_event')
      .where('path', 'like', '/api/users/clerk/%')
      .orderBy('id')
      .select('path', 'status', 'detail');
    expect(acts.map((r) => `${r.path} ${r.status}`)).toEqual(
      expect.arrayContaining([
        '/api/users/clerk/revoke 200',
        '/api/users/clerk/disable 200',
        '/api/users/clerk/enable 200',
        '/api/users/clerk/password 200',
      ]),
    );
    expect(JSON.stringify(acts)).not.toContain('clerk-second-pass');

    // the same from the CLI
    const cli = (args: string[], input?: string) =>
      spawnSync(process.execPath, ['bin/tuban.mjs', 'users', ...args], {
        env: run.env,
        encoding: 'utf8',
        input,
        timeout: 600_000,
      });
    const list = cli(['list']);
    expect(list.status, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/^clerk\ttown\t350206002\tactive\t1\t/m);
    const pw = cli(['passwd', 'clerk'], 'clerk-third-pass\n');
    expect(pw.status, pw.stderr).toBe(0);
    expect(pw.stdout).toMatch(/clerk: password set, 1 token\(s\) revoked/);
    expect(cli(['passwd', 'clerk'], 'clerk\n').stderr).toMatch(/at least 10 characters/);
    expect((await loginAs('clerk-third-pass')).statusCode).toBe(200);
    expect(cli(['disable', 'clerk']).stdout).toMatch(/clerk: disabled, 1 token\(s\) revoked/);
    expect((await loginAs('clerk-third-pass')).statusCode).toBe(401);
    expect(cli(['enable', 'clerk']).status).toBe(0);
    expect(cli(['revoke', 'clerk']).stdout).toMatch(/clerk: 0 token\(s\) revoked/);
    expect(cli(['revoke', 'nobody']).status).toBe(2);
  });

  it('low findings: logins are limited per user and per address (429), as slow for unknown users, and passwords have a floor', async () => {
    const limited = await buildServer({
      db: run.db,
      config: { ...run.config, TUBAN_LOGIN_FAILURES_PER_USER: 3, TUBAN_LOGIN_FAILURES_PER_ADDRESS: 6 },
      env,
      log: createLogger('error', () => {}),
    });
    try {
      const attempt = (username: string, password: string, from: string) =>
        limited.inject({ method: 'POST', url: '/api/login', payload: { username, password }, remoteAddress: from });
      await createUser(run.db, { username: 'field1', role: 'town', townCode: '350206001', password: 'field-one-pass' });
      // per user: three failures, then even the right password waits
      for (let i = 0; i < 3; i++)
        expect((await attempt('field1', 'guess-number-' + i, `10.0.1.${i + 1}`)).statusCode).toBe(401);
      const locked = await attempt('field1', 'field-one-pass', '10.0.1.9');
      expect(locked.statusCode).toBe(429);
      expect(Number(locked.headers['retry-after'])).toBeGreaterThan(0);
      expect(locked.json().message).toMatch(/too many failed logins for field1/);
      // per address: six failures over any names, then that address waits; another does not
      for (let i = 0; i < 6; i++)
        expect((await attempt(`nobody${i}`, 'whatever-pass', '10.0.2.1')).statusCode).toBe(401);
      expect((await attempt('nobody9', 'whatever-pass', '10.0.2.1')).statusCode).toBe(429);
      expect((await attempt('nobody9', 'whatever-pass', '10.0.2.2')).statusCode).toBe(401);

      // as slow for a name that does not exist as for a wrong password (scrypt either way)
      await createUser(run.db, { username: 'field2', role: 'town', townCode: '350206001', password: 'field-two-pass' });
      const timed = async (username: string, from: string) => {
        const t0 = performance.now();
        expect((await attempt(username, 'not-the-password', from)).statusCode).toBe(401);
        return performance.now() - t0;
      };
      const median = (xs: number[]) => xs.sort((p, q) => p - q)[Math.floor(xs.length / 2)];
      const known: number[] = [];
      const unknown: number[] = [];
      for (let i = 0; i < 3; i++) {
        known.push(await timed('field2', `10.0.3.${i}`));
        unknown.push(await timed(`ghost${i}`, `10.0.4.${i}`));
      }
      expect(median(unknown)).toBeGreaterThan(median(known) * 0.4);
    } finally {
      await limited.close();
    }
    // the password floor, at creation
    for (const [password, why] of [
      ['        ', /at least 10/],
      ['          ', /only spaces/],
      ['short-pw', /at least 10/],
      ['Field3User', /not be the user name/],
    ] as const) {
      const r = await call('root', 'POST', '/api/users', { username: 'field3user', role: 'analyst', password });
      expect(r.statusCode, password).toBe(400);
      expect(r.json().message).toMatch(why);
    }
  });

  it('low findings: 20 identical parallel extends move the deadline once; each new request key once more', async () => {
    const code = '350206-202403-0003';
    today = '2024-03-18';
    const dispatched = await call('ana', 'POST', `/api/patches/${code}/actions/dispatch`, {});
    expect(dispatched.statusCode, dispatched.body).toBe(200);
    const due0 = dispatched.json().verify_due;
    const extend = (key?: string) =>
      call('sup', 'POST', `/api/patches/${code}/actions/extend`, {
        working_days: 5,
        reason: '台风停工',
        ...(key ? { request_key: key } : {}),
      });
    expect((await extend()).json().message).toMatch(/request_key/);
    const same = await Promise.all(Array.from({ length: 20 }, () => extend('typhoon-2024-03-18')));
    for (const r of same) expect(r.statusCode, r.body).toBe(200);
    const due1 = (await call('sup', 'GET', `/api/patches/${code}`)).json().verify_due;
    expect(due1).toBe(addWorkingDays(env.calendar, due0, 5));
    expect(new Set(same.map((r) => r.json().verify_due))).toEqual(new Set([due1]));
    const again = await extend('typhoon-2024-03-19');
    expect(again.json().verify_due).toBe(addWorkingDays(env.calendar, due1, 5));
    const events = (await call('sup', 'GET', `/api/patches/${code}`))
      .json()
      .history.filter((e: { type: string }) => e.type === 'extend');
    expect(events).toHaveLength(2);
    expect(events.every((e: { detail: { reason: string } }) => e.detail.reason === '台风停工')).toBe(true);
  });

  it('info finding: analysts cannot merge patches of different towns', async () => {
    // 0001 and 0004 are 禾山's, 0002 殿前's
    const r = await call('ana', 'POST', '/api/patches/350206-202403-0004/actions/merge', {
      other: '350206-202403-0002',
      reason: '同一栋',
    });
    expect(r.statusCode).toBe(400);
    expect(r.json().message).toMatch(/different towns/);
    expect((await call('ana', 'GET', '/api/patches/350206-202403-0002')).json().status).not.toBe('merged');
  });

  it('info finding: town users get map imagery only inside their town and a margin; batches show no server paths', async () => {
    const res = 0.5;
    const z = 5; // 0.5 m in the tile grid
    const tileAt = (x: number, y: number) =>
      `/api/map/tiles/2024-03/${z}/${Math.floor(x / (256 * res))}/${Math.floor((10_000_000 - y) / (256 * res))}.png`;
    // random points on March's imagery (1 km across; 禾山 is its eastern 474 m), with their distance from 殿前 (350206001)
    const { rows } = await run.db.raw(`
      select ST_X(p.geom) x, ST_Y(p.geom) y, ST_Distance(p.geom, t.geom) d
      from (select (ST_Dump(ST_GeneratePoints(ST_Union(footprint), 400, 17))).geom from imagery where month = '2024-03') p,
           (select ST_Union(geom) geom from reference_feature where kind = 'town' and code = '350206001') t`);
    const alpha = async (png: Buffer) => {
      const { data, info } = await sharp(png).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
      let shown = 0;
      for (let i = info.channels - 1; i < data.length; i += info.channels) if (data[i] > 0) shown++;
      return shown / (info.width * info.height);
    };
    // a 128 m map tile around a point 420 m away lies wholly beyond the 200 m margin
    const far = rows.find((r: { d: number }) => r.d > 420);
    const inside = rows.find((r: { d: number }) => r.d === 0);
    const edge = rows.find((r: { d: number }) => r.d > 180 && r.d < 220);
    expect(far && inside && edge).toBeTruthy();
    const farTile = tileAt(far.x, far.y);
    expect((await call('ana', 'GET', farTile)).statusCode).toBe(200);
    expect((await call('dianqian', 'GET', farTile)).statusCode).toBe(204);
    const own = await call('dianqian', 'GET', tileAt(inside.x, inside.y));
    expect(own.statusCode).toBe(200);
    expect(own.rawPayload.equals((await call('ana', 'GET', tileAt(inside.x, inside.y))).rawPayload)).toBe(true);
    const edgeTile = tileAt(edge.x, edge.y);
    const [mine, all] = [await call('dianqian', 'GET', edgeTile), await call('ana', 'GET', edgeTile)];
    expect(mine.statusCode).toBe(200);
    const [shownMine, shownAll] = [await alpha(mine.rawPayload), await alpha(all.rawPayload)];
    expect(shownMine).toBeGreaterThan(0);
    expect(shownMine).toBeLessThan(shownAll);

    // a batch's scenes by file name over HTTP, never the server's folders
    const batches = (await call('ana', 'GET', '/api/batches')).json();
    const detail = (await call('ana', 'GET', `/api/batches/${batches[0].id}`)).json();
    expect(detail.tiles.length).toBeGreaterThan(0);
    for (const t of detail.tiles) expect(t.path).not.toContain('/');
    expect(JSON.stringify(detail)).not.toContain(fixturesDir);
  });

  it('low findings: registration refuses sizes the file cannot back and sizes over the ceiling', async () => {
    const small = Buffer.from(
      encodeGeoTiff({
        widthPx: 16,
        heightPx: 16,
        samples: new Uint8Array(16 * 16 * 3).fill(90),
        bands: 3,
        crs: EPSG_4548,
        geoTransform: [611200, 0.5, 0, 2713600, 0, -0.5],
      }),
    );
    /** The first IFD's entry for `tag` (geotiff.js writes big-endian; GDAL little-endian): where its type and value sit. */
    const le = (b: Buffer) => b.toString('latin1', 0, 2) === 'II';
    const u16 = (b: Buffer, o: number) => (le(b) ? b.readUInt16LE(o) : b.readUInt16BE(o));
    const entry = (b: Buffer, tag: number) => {
      const ifd = le(b) ? b.readUInt32LE(4) : b.readUInt32BE(4);
      for (let i = 0; i < u16(b, ifd); i++) {
        const e = ifd + 2 + i * 12;
        if (u16(b, e) === tag) return e;
      }
      throw new Error(`no tag ${tag}`);
    };
    const setLong = (b: Buffer, tag: number, v: number) => {
      const e = entry(b, tag);
      if (le(b)) {
        b.writeUInt16LE(4, e + 2);
        b.writeUInt32LE(v, e + 8);
      } else {
        b.writeUInt16BE(4, e + 2);
        b.writeUInt32BE(v, e + 8);
      }
    };
    // outside the data folder: the last test checks it holds only what the server named
    const dir = mkdtempSync(join(tmpdir(), 'tuban-hostile-tiffs-'));
    // the review's file: 1,000,000 × 1,000,000 px declared, 11 MB on disk
    const huge = Buffer.concat([small, Buffer.alloc(11 * 2 ** 20)]);
    setLong(huge, 256, 1_000_000);
    setLong(huge, 257, 1_000_000);
    writeFileSync(join(dir, 'huge.tif'), huge);
    // a strip that lies past the end of the file
    const past = Buffer.from(small);
    setLong(past, 273, small.length + 10);
    writeFileSync(join(dir, 'past-end.tif'), past);
    writeFileSync(join(dir, 'ok.tif'), small);
    const r = await registerImagery(run.db, run.config, '2024-07', [dir]);
    expect(r.registered.map((i) => basename(i.path))).toEqual(['ok.tif']);
    const why = Object.fromEntries(r.refused.map((x) => [basename(x.path), x]));
    expect(why['huge.tif'].code).toBe('too_large');
    expect(why['huge.tif'].reason).toMatch(/1000000×1000000 px .* over the 10000 Mpx ceiling/);
    expect(why['past-end.tif'].code).toBe('corrupt_tiff');
    expect(why['past-end.tif'].reason).toMatch(/strip 0 lies at bytes .* past the end of the file/);
    // under the ceiling but declaring more strips than it lists
    const config = { ...run.config, TUBAN_MAX_IMAGE_MPX: 100_000_000 };
    const r2 = await registerImagery(run.db, config, '2024-07', [join(dir, 'huge.tif')]);
    expect(r2.refused[0].code).toBe('corrupt_tiff');
    expect(r2.refused[0].reason).toMatch(/needs \d+ of them; the file lists 1 offsets/);
    // and a ceiling below a real file's size refuses it by name
    const r3 = await registerImagery(run.db, { ...run.config, TUBAN_MAX_IMAGE_MPX: 0.0001 }, '2024-07', [
      join(dir, 'ok.tif'),
    ]);
    expect(r3.refused[0]).toMatchObject({ code: 'too_large' });
    expect(r3.refused[0].reason).toContain('ok.tif');
    rmSync(dir, { recursive: true, force: true });
  });

  it('a request that hangs is answered 503 at the time limit, and the server statements end too', async () => {
    const limited = await buildServer({
      db: run.db,
      config: { ...run.config, TUBAN_HTTP_TIMEOUT_S: 1 },
      env,
      log: createLogger('error', () => {}),
    });
    limited.get('/api/test-hang', async () => new Promise(() => {}));
    try {
      const t0 = Date.now();
      const r = await limited.inject({
        method: 'GET',
        url: '/api/test-hang',
        headers: { authorization: `Bearer ${token.ana}` },
      });
      expect(r.statusCode).toBe(503);
      expect(r.json().message).toMatch(/longer than 1 s/);
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect((await limited.inject({ method: 'GET', url: '/api/health' })).statusCode).toBe(200);
    } finally {
      await limited.close();
    }
    const db = await openDb(run.config, { statementTimeoutMs: 300 });
    try {
      await expect(db.raw('select pg_sleep(3)')).rejects.toThrow(/statement timeout/);
    } finally {
      await db.destroy();
    }
  });

  it('low findings: malformed input is a 400 naming the field, never a 500', async () => {
    const bad: [string, RegExp][] = [
      ['/api/patches?offset=2147483648', /offset/],
      ['/api/patches?bbox=1.2.3,4,5,6', /bbox/],
      ['/api/patches?bbox=118,24,117,25', /bbox/],
      ['/api/patches?town=%00', /town/],
      ['/api/patches?town=350206001%0D%0AX-Injected:1', /town/],
      ['/api/patches?status=detected%00', /status/],
      ['/api/evidence/1e300', /evidence id/],
      ['/api/evidence/-1', /evidence id/],
      ['/api/batches/99999999999999999999', /batch id/],
    ];
    for (const [url, field] of bad) {
      const r = await call('ana', 'GET', url);
      expect(r.statusCode, url).toBe(400);
      expect(r.json().message, url).toMatch(field);
    }
    expect((await call('ana', 'GET', '/api/patches?offset=10&bbox=118,24,119,25')).statusCode).toBe(200);
    // a bow-tie drawn over a patch is made valid (the second part, far away, then refuses the split: nothing changes)
    const code = '350206-202403-0004';
    const g = (await call('ana', 'GET', `/api/patches/${code}`)).json().geometry;
    const ring = (g.type === 'MultiPolygon' ? g.coordinates[0][0] : g.coordinates[0]) as number[][];
    const [x0, x1, y0, y1] = [
      Math.min(...ring.map((c) => c[0])),
      Math.max(...ring.map((c) => c[0])),
      Math.min(...ring.map((c) => c[1])),
      Math.max(...ring.map((c) => c[1])),
    ];
    const bowTie = {
      type: 'Polygon',
      coordinates: [
        [
          [x0, y0],
          [x1, y1],
          [x1, y0],
          [x0, y1],
          [x0, y0],
        ],
      ],
    };
    const faraway = {
      type: 'Polygon',
      coordinates: [
        [
          [100, 10],
          [100.001, 10],
          [100.001, 10.001],
          [100, 10],
        ],
      ],
    };
    const split = await call('ana', 'POST', `/api/patches/${code}/actions/split`, {
      parts: [bowTie, faraway],
      reason: '两栋',
    });
    expect(split.statusCode, split.body).toBe(400);
    expect(split.json().message).toMatch(/part 2 does not cover/);
    const open = {
      type: 'Polygon',
      coordinates: [
        [
          [x0, y0],
          [x1, y0],
          [x1, y1],
          [x0, y1],
        ],
      ],
    };
    const unclosed = await call('ana', 'POST', `/api/patches/${code}/actions/split`, {
      parts: [open, bowTie],
      reason: '两栋',
    });
    expect(unclosed.statusCode).toBe(400);
    expect(unclosed.json().message).toMatch(/parts\.0\.coordinates\.0: a ring ends where it starts/);
    expect((await call('ana', 'GET', `/api/patches/${code}`)).json().status).toBe('detected');
  });

  it('low findings: a 500 is logged with a request id the error body shows', async () => {
    const r = await call('ana', 'GET', '/api/test-crash');
    expect(r.statusCode).toBe(500);
    const id = r.json().request_id;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(r.json().message).toContain(id);
    expect(r.json().message).not.toMatch(/a bug/);
    expect(logged.find((l) => l.requestId === id)).toMatchObject({
      level: 'error',
      event: 'Http:InternalError',
      error: 'a bug',
      path: '/api/test-crash',
      user: 'ana',
    });
  });

  it('low findings: logins take a few KB, every response says nosniff and no framing, the web app gets a CSP', async () => {
    const big = await call(null, 'POST', '/api/login', { username: 'ana', password: 'x'.repeat(20 * 1024) });
    expect(big.statusCode).toBe(413);
    for (const url of ['/api/health', '/api/patches']) {
      const r = await call('ana', 'GET', url);
      expect(r.headers['x-content-type-options'], url).toBe('nosniff');
      expect(r.headers['content-security-policy'], url).toMatch(/frame-ancestors 'none'/);
      expect(r.headers['x-frame-options'], url).toBe('DENY');
    }
  });

  it('low findings: evidence comes back under its proven type and a safe name, whatever the upload was called', async () => {
    const PNG = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex');
    const polyglot = Buffer.concat([PNG, Buffer.from('<html><script>alert(1)</script></html>')]);
    const up = await call(
      'dianqian',
      'POST',
      `/api/patches/${OWN}/evidence?filename=${encodeURIComponent('../现场.html')}`,
      polyglot,
      { 'content-type': 'image/png' },
    );
    expect(up.statusCode, up.body).toBe(201);
    const r = await call('dianqian', 'GET', `/api/evidence/${up.json().id}`);
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toBe('image/png');
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.headers['content-disposition']).toMatch(
      /^attachment; filename="__\.png"; filename\*=UTF-8''%E7%8E%B0%E5%9C%BA\.png$/,
    );
  });

  it('low findings: a batch refuses a baseline that is not earlier than its month, before it writes anything', async () => {
    const { manifest } = loadManifest(run.config.modelDir);
    const batches = async () => Number((await run.db('batch').count({ n: '*' }))[0].n);
    const before = await batches();
    for (const baseline of ['2024-03', '2024-04']) {
      await expect(launchBatch(run.db, run.config, manifest, '2024-03', baseline)).rejects.toThrow(
        new RegExp(`--baseline ${baseline} is not earlier than --month 2024-03`),
      );
    }
    expect(await batches()).toBe(before);
  });

  it('keeps the evidence of other towns where it is (the data folder holds only what the server named)', () => {
    for (const f of filesUnder(run.config.dataDir)) {
      const rel = f.slice(run.config.dataDir.length + 1);
      expect(rel, f).toMatch(/^(evidence\/[0-9a-f]{2}\/[0-9a-f]{64}\.(jpg|png|pdf)|pgdata\/.*)$/);
      expect(dirname(f).startsWith(run.config.dataDir)).toBe(true);
    }
  });
});
