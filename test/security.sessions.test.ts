import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { buildServer } from '../server/app.ts';
import { createUser } from '../store/users.ts';
import { createLogger } from '../core/log.ts';
import { hostileServer } from './helpers/hostile.ts';

/** The security review's findings (issue 17) on tokens, user accounts and logins, replayed against tuban serve on real PostGIS. */
describe('security: tokens and logins', () => {
  const h = hostileServer();
  const { call, env } = h;

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
      // per user from one address: three failures, then even the right password waits there
      for (let i = 0; i < 3; i++)
        expect((await attempt('field1', 'guess-number-' + i, '10.0.1.1')).statusCode).toBe(401);
      const locked = await attempt('field1', 'field-one-pass', '10.0.1.1');
      expect(locked.statusCode).toBe(429);
      expect(Number(locked.headers['retry-after'])).toBeGreaterThan(0);
      expect(locked.json().message).toMatch(/用户 field1 登录失败次数过多，请 \d+ 秒后再试/);
      // nobody locks a named user out from elsewhere: the clerk's own phone still signs in
      expect((await attempt('field1', 'field-one-pass', '10.0.1.9')).statusCode).toBe(200);
      // attempts in flight count: forty at once for one user, sixty at once from one address, held to the limits
      const burst = await Promise.all(
        Array.from({ length: 40 }, (_, i) => attempt('field1', `burst-guess-${i}`, '10.0.5.1')),
      );
      expect(burst.filter((r) => r.statusCode === 401)).toHaveLength(3);
      expect(burst.filter((r) => r.statusCode === 429)).toHaveLength(37);
      const spray = await Promise.all(
        Array.from({ length: 60 }, (_, i) => attempt(`spray${i}`, 'whatever-pass', '10.0.6.1')),
      );
      expect(spray.filter((r) => r.statusCode === 401)).toHaveLength(6);
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
});
