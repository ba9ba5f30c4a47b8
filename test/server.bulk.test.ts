import { describe, expect, it } from 'vitest';
import { OTHER, OWN, workflowApi } from './helpers/workflow-api.ts';

/**
 * Bulk moves (issue 30): one action on many patches by a filter or by codes, each judged on its own —
 * moved, or refused with its reason — one history event per patch and one audit row naming them all.
 */
describe('bulk moves', () => {
  const h = workflowApi();
  const { call } = h;
  const bulk = (who: string, action: string, payload: unknown) =>
    call(who, 'POST', `/api/patches/actions/${action}`, payload);

  it('dispatches a month by filter, each patch on its own, one event each and one audit row naming them all', async () => {
    const first = await bulk('ana', 'dispatch', { select: { month: '2024-03' } });
    expect(first.statusCode, first.body).toBe(200);
    const r = first.json();
    expect(r).toMatchObject({ action: 'dispatch', dry_run: false, matched: 5, moved: 5, refused: 0 });
    expect(r.results.map((x: { to: string }) => x.to)).toEqual(Array(5).fill('dispatched'));
    for (const x of r.results) {
      const p = (await call('ana', 'GET', `/api/patches/${x.code}`)).json();
      expect(p.status).toBe('dispatched');
      expect(p.history.filter((e: { type: string }) => e.type === 'dispatch')).toHaveLength(1);
      expect(p.verify_due).toMatch(/^2024-03-2\d$/);
    }
    const audit = await h.run.db('audit_event').where({ path: '/api/patches/actions/dispatch' });
    expect(audit).toHaveLength(1);
    expect(audit[0].detail.bulk.moved).toEqual(r.results.map((x: { code: string }) => x.code));

    // the same request again: nothing left to dispatch, each refusal says why
    const again = (await bulk('ana', 'dispatch', { select: { month: '2024-03' } })).json();
    expect(again).toMatchObject({ matched: 5, moved: 0, refused: 5 });
    expect(again.results[0].error).toMatchObject({ kind: 'conflict' });
    expect(again.results[0].error.message).toMatch(/dispatched/);
  });

  it('moves the patches named, refuses the unknown and the wrong state alone, and a dry run changes nothing', async () => {
    await bulk('ana', 'dispatch', { select: { codes: [OWN, OTHER] } });
    const dry = (
      await bulk('sup', 'extend', {
        select: { codes: [OWN, OTHER, '350206-202403-0003', 'NO-SUCH'] },
        body: { working_days: 3, reason: '雨季', request_key: 'bulk-extend-0001' },
        dry_run: true,
      })
    ).json();
    expect(dry).toMatchObject({ dry_run: true, matched: 3, moved: 2, refused: 2 });
    expect(
      (await call('ana', 'GET', `/api/patches/${OWN}`)).json().history.map((e: { type: string }) => e.type),
    ).not.toContain('extend');
    const r = (
      await bulk('sup', 'extend', {
        select: { codes: [OWN, OTHER, '350206-202403-0003', 'NO-SUCH'] },
        body: { working_days: 3, reason: '雨季', request_key: 'bulk-extend-0001' },
      })
    ).json();
    const by = Object.fromEntries(r.results.map((x: { code: string }) => [x.code, x]));
    expect(by[OWN]).toMatchObject({ moved: true, from: 'dispatched', to: 'dispatched' });
    expect(by[OTHER]).toMatchObject({ moved: true });
    expect(by['350206-202403-0003'].error).toMatchObject({ kind: 'conflict' }); // never dispatched
    expect(by['NO-SUCH'].error).toMatchObject({ code: 'not_found' });
    // sent again with its key, the extension is not applied twice
    const repeat = (
      await bulk('sup', 'extend', {
        select: { codes: [OWN] },
        body: { working_days: 3, reason: '雨季', request_key: 'bulk-extend-0001' },
      })
    ).json();
    expect(repeat.results[0]).toMatchObject({ moved: false, from: 'dispatched', to: 'dispatched' });
    expect(
      (await call('ana', 'GET', `/api/patches/${OWN}`))
        .json()
        .history.filter((e: { type: string }) => e.type === 'extend'),
    ).toHaveLength(1);
  });

  it('refuses a role that may never take the action, a bad body and a selection without a month, before moving anything', async () => {
    expect((await bulk('dianqian', 'dispatch', { select: { month: '2024-03' } })).statusCode).toBe(403);
    expect((await bulk('ana', 'close', { select: { month: '2024-03' } })).statusCode).toBe(403);
    const bad = await bulk('ana', 'dismiss', { select: { month: '2024-03' }, body: { reason: 'aliens' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toMatch(/reason/);
    const nothing = await bulk('ana', 'dispatch', { select: { town: '350206001' } });
    expect(nothing.statusCode).toBe(400);
    expect(nothing.json().message).toMatch(/codes, or a filter with a month/);
    expect(await h.run.db('patch').where({ status: 'dispatched' })).toEqual([]);
  });

  it('closes many with each patch’s own checks: a standing imagery check refuses that one alone', async () => {
    // two patches reported rectified, one of which the imagery says still stands
    const codes = ['350206-202403-0001', '350206-202403-0004'];
    for (const code of codes) {
      await call('ana', 'POST', `/api/patches/${code}/actions/dispatch`, {});
      await h.photo('heshan', code, 'site.jpg');
      await call('heshan', 'POST', `/api/patches/${code}/actions/verify`, {
        result: 'illegal',
        violation: 'construction',
      });
      await call('heshan', 'POST', `/api/patches/${code}/actions/rectify`, { measure: 'demolish' });
      const { JPEG } = await import('./helpers/hostile.ts');
      await call('heshan', 'POST', `/api/patches/${code}/evidence?filename=d.jpg`, JPEG, {
        'content-type': 'image/jpeg',
      });
      await call('heshan', 'POST', `/api/patches/${code}/actions/report_rectified`, {});
    }
    await h.run
      .db('patch')
      .where({ code: codes[1] })
      .update({
        imagery_check: JSON.stringify({
          month: '2024-04',
          result: 'standing',
          score: 0.05,
          model_name: 't',
          model_version: '1',
        }),
      });
    const r = (
      await bulk('sup', 'close', { select: { month: '2024-03', status: 'rectified', town: '350206002' } })
    ).json();
    const by = Object.fromEntries(r.results.map((x: { code: string }) => [x.code, x]));
    expect(by[codes[0]]).toMatchObject({ moved: true, to: 'closed' });
    expect(by[codes[1]]).toMatchObject({ moved: false, error: { kind: 'bad_input' } });
    expect(by[codes[1]].error.message).toMatch(/still standing/);
  });
});
