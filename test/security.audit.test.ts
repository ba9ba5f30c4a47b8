import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { buildServer } from '../server/app.ts';
import { createUser } from '../store/users.ts';
import { createLogger } from '../core/log.ts';
import { openDb } from '../store/db.ts';
import { hostileServer, OWN } from './helpers/hostile.ts';

/**
 * The security review's findings (issue 17) on tokens, logins, audit, malformed and slow requests, headers, each replayed as an attack against
 * `tuban serve` on real PostGIS: these failed before the fixes and guard them now.
 */
describe('security: tokens, logins, audit, malformed and slow requests, headers', () => {
  const h = hostileServer();
  const { call, env, token, logged } = h;

  /** The audit rows and patch events of one patch's notes path, newest last. */
  async function trail(code: string) {
    const audit = await h.run.db('audit_event').where('path', `/api/patches/${code}/notes`).orderBy('id');
    const events = await h.run
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
    await h.run.db.raw(
      `alter table audit_event add constraint "${marker}" check (detail::text not like '%${marker}%')`,
    );
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
      await h.run.db.raw(`alter table audit_event drop constraint "${marker}"`);
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
    await createUser(h.run.db, {
      username: 'clerk',
      role: 'town',
      townCode: '350206002',
      password: 'clerk-first-pass',
    });
    const loginAs = (password: string) => call(null, 'POST', '/api/login', { username: 'clerk', password });
    const as = (t: string) =>
      h.app.inject({ method: 'GET', url: '/api/me', headers: { authorization: `Bearer ${t}` } });

    // a login's token lives TUBAN_TOKEN_DAYS (30 by default), then stops working
    const first = await loginAs('clerk-first-pass');
    expect(first.statusCode, first.body).toBe(200);
    const days = (Date.parse(first.json().expires_at) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29.9);
    expect(days).toBeLessThanOrEqual(30);
    expect((await as(first.json().token)).statusCode).toBe(200);
    await h.run
      .db('api_token')
      .where('token_hash', createHash('sha256').update(first.json().token).digest('hex'))
      .update({ expires_at: h.run.db.raw("now() - interval '1 second'") });
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
    const acts = await h.run
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
        env: h.run.env,
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
      db: h.run.db,
      config: { ...h.run.config, TUBAN_LOGIN_FAILURES_PER_USER: 3, TUBAN_LOGIN_FAILURES_PER_ADDRESS: 6 },
      env,
      log: createLogger('error', () => {}),
    });
    try {
      const attempt = (username: string, password: string, from: string) =>
        limited.inject({ method: 'POST', url: '/api/login', payload: { username, password }, remoteAddress: from });
      await createUser(h.run.db, {
        username: 'field1',
        role: 'town',
        townCode: '350206001',
        password: 'field-one-pass',
      });
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
      await createUser(h.run.db, {
        username: 'field2',
        role: 'town',
        townCode: '350206001',
        password: 'field-two-pass',
      });
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

  it('a request that hangs is answered 503 at the time limit, and the server statements end too', async () => {
    const limited = await buildServer({
      db: h.run.db,
      config: { ...h.run.config, TUBAN_HTTP_TIMEOUT_S: 1 },
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
    const db = await openDb(h.run.config, { statementTimeoutMs: 300 });
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
});
