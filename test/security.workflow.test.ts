import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { addWorkingDays, workingDaysBetween } from '../workflow/calendar.ts';
import { DEFAULT_POLICY } from '../workflow/lifecycle.ts';
import { loadManifest } from '../pipeline/io/model.manifest.ts';
import { launchBatch } from '../workers/batch.launch.ts';
import { hostileServer } from './helpers/hostile.ts';

/**
 * The security review's findings (issue 17) on deadlines, merges and batches, each replayed as an attack against
 * `tuban serve` on real PostGIS: these failed before the fixes and guard them now.
 */
describe('security: deadlines, merges and batches', () => {
  const h = hostileServer();
  const { call, env } = h;
  const fixturesDir = inject('fixturesDir');

  it('finding 2 (High): a far-future due is refused, and nothing loops over days without a bound', async () => {
    const code = '350206-202403-0005';
    h.today = '2024-03-18';
    await h.toIllegal(code, 'dianqian');
    for (const due of ['9999-12-31', '2101-01-01', '2027-02-30', '2024-13-01', '24-03-30']) {
      const r = await call('dianqian', 'POST', `/api/patches/${code}/actions/rectify`, { measure: 'demolish', due });
      expect(r.statusCode, due).toBe(400);
      expect(r.json().message, due).toMatch(/due/);
    }
    const r = await call('dianqian', 'POST', `/api/patches/${code}/actions/rectify`, { measure: 'demolish' });
    expect(r.statusCode, r.body).toBe(200);
    // a deadline stored before the fix: extend answers at once with a 400 instead of hanging the server
    await h.run.db('patch').where({ code }).update({ rectify_due: '9999-12-31' });
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
      spawnSync(process.execPath, ['bin/tuban.mjs', ...args], { env: h.run.env, encoding: 'utf8', timeout: 600_000 });
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
    h.today = '2024-03-18';
    await h.toIllegal(code, 'heshan');
    const cls = (await call('heshan', 'GET', `/api/patches/${code}`)).json()
      .class as keyof typeof DEFAULT_POLICY.rectifyDays;
    const latest = addWorkingDays(env.calendar, h.today, DEFAULT_POLICY.rectifyDays[cls]);
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

  it('low findings: 20 identical parallel extends move the deadline once; each new request key once more', async () => {
    const code = '350206-202403-0003';
    h.today = '2024-03-18';
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

  it('low findings: a batch refuses a baseline that is not earlier than its month, before it writes anything', async () => {
    const { manifest } = loadManifest(h.run.config.modelDir);
    const batches = async () => Number((await h.run.db('batch').count({ n: '*' }))[0].n);
    const before = await batches();
    for (const baseline of ['2024-03', '2024-04']) {
      await expect(launchBatch(h.run.db, h.run.config, manifest, '2024-03', baseline)).rejects.toThrow(
        new RegExp(`--baseline ${baseline} is not earlier than --month 2024-03`),
      );
    }
    expect(await batches()).toBe(before);
  });
});
