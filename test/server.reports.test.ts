import { describe, expect, it } from 'vitest';
import { supervisorBoard } from '../store/reports.ts';
import { userByName } from '../store/users.ts';
import { sweepOverdue } from '../store/overdue.ts';
import { addDays } from '../workflow/calendar.ts';
import { JPEG } from './helpers/hostile.ts';
import { OWN, workflowApi } from './helpers/workflow-api.ts';

/** The town ranking and the to-do lists, through the HTTP API on real PostGIS. */
describe('workflow HTTP API: ranking and to-do lists', () => {
  const h = workflowApi();
  const { call, env } = h;

  it('ranks zero growth only where every new patch was verified and none is illegal, for every town to see', async () => {
    // 禾山: 0004 dispatched and left unverified past its deadline (overdue, escalated), 0001 never
    // dispatched: nothing found illegal, but nothing verified either, so no zero growth
    expect((await call('ana', 'POST', '/api/patches/350206-202403-0004/actions/dispatch', {})).statusCode).toBe(200);
    // 殿前: every patch dispatched and verified on site, none illegal
    for (const code of ['350206-202403-0002', '350206-202403-0003', '350206-202403-0005']) {
      expect((await call('ana', 'POST', `/api/patches/${code}/actions/dispatch`, {})).statusCode).toBe(200);
      const photo = await call('dianqian', 'POST', `/api/patches/${code}/evidence?filename=site.jpg`, JPEG, {
        'content-type': 'image/jpeg',
      });
      expect(photo.statusCode, photo.body).toBe(201);
      const v = await call('dianqian', 'POST', `/api/patches/${code}/actions/verify`, { result: 'pre_existing' });
      expect(v.statusCode, v.body).toBe(200);
    }
    for (let d = '2024-03-18'; d <= '2024-04-30'; d = addDays(d, 1)) {
      h.today = d;
      await sweepOverdue(h.run.db, env);
    }
    // a town user sees the whole ranking and the city's own totals, as a supervisor does
    for (const who of ['sup', 'heshan']) {
      const rep = (await call(who, 'GET', '/api/reports/monthly?month=2024-03')).json();
      const dq = rep.towns.find((t: { town_code: string }) => t.town_code === '350206001');
      const hs = rep.towns.find((t: { town_code: string }) => t.town_code === '350206002');
      expect(dq, who).toMatchObject({
        new_patches: 3,
        verified: 3,
        unverified: 0,
        illegal: 0,
        zero_growth: true,
        rank: 1,
      });
      expect(hs, who).toMatchObject({
        new_patches: 2,
        verified: 0,
        unverified: 2,
        unverified_overdue: 1,
        illegal: 0,
        escalated: 1,
        zero_growth: false,
        rank: 2,
      });
      expect(rep.city, who).toMatchObject({
        new_patches: 5,
        illegal: 0,
        unverified: 2,
        zero_growth_towns: 1,
        towns: 2,
      });
      // the next month's report sets each town against these (the trend's tally: live patches of March)
      const april = (await call(who, 'GET', '/api/reports/monthly?month=2024-04')).json();
      expect(april.previous_month).toBe('2024-03');
      for (const [town, n] of [
        ['350206001', 3],
        ['350206002', 2],
      ] as const)
        expect(
          april.towns.find((t: { town_code: string }) => t.town_code === town),
          `${who} ${town}`,
        ).toMatchObject({ new_patches: 0, prev_new_patches: n, change_from_previous: -n });
      expect(april.city).toMatchObject({ new_patches: 0, prev_new_patches: 5, change_from_previous: -5 });
    }
  });

  it('never ranks a town that verified and found illegal construction below one that left its patches unverified', async () => {
    // 禾山: both patches dispatched and left unverified past their deadline (视同违法), one listed for supervision
    for (const code of ['350206-202403-0001', '350206-202403-0004'])
      expect((await call('ana', 'POST', `/api/patches/${code}/actions/dispatch`, {})).statusCode).toBe(200);
    // 殿前: all three verified on site and found illegal; one of them rectified and closed
    await h.walkToClosed('350206-202403-0002');
    for (const code of ['350206-202403-0003', '350206-202403-0005']) {
      await call('ana', 'POST', `/api/patches/${code}/actions/dispatch`, {});
      await h.photo('dianqian', code, 'site.jpg');
      const v = await call('dianqian', 'POST', `/api/patches/${code}/actions/verify`, {
        result: 'illegal',
        violation: 'construction',
      });
      expect(v.statusCode, v.body).toBe(200);
    }
    h.today = '2024-03-28'; // three working days past 禾山's deadline: overdue, not yet escalated by the sweep
    await sweepOverdue(h.run.db, env);
    expect(
      (await call('sup', 'POST', '/api/patches/350206-202403-0004/actions/escalate', { reason: '逾期未核查' }))
        .statusCode,
    ).toBe(200);
    const rep = (await call('sup', 'GET', '/api/reports/monthly?month=2024-03')).json();
    const [first, second] = rep.towns;
    expect(first).toMatchObject({
      town_code: '350206001',
      verified: 3,
      illegal: 3,
      illegal_closed: 1,
      penalty: 2.5,
      rank: 1,
    });
    expect(second).toMatchObject({
      town_code: '350206002',
      verified: 0,
      unverified_overdue: 2,
      escalated: 1,
      penalty: 4,
      rank: 2,
    });

    // the report as a workbook, the rule in words above the ranking
    const xlsx = await call('sup', 'GET', '/api/reports/monthly.xlsx?month=2024-03');
    expect(xlsx.statusCode).toBe(200);
    const ExcelJS = (await import('exceljs')).default;
    const wb = new ExcelJS.Workbook();
    await wb.xlsx.load(xlsx.rawPayload as unknown as ArrayBuffer);
    const ws = wb.worksheets[0];
    expect(ws.getRow(2).getCell(1).text).toMatch(/counted as illegal/);
    expect(ws.getRow(4).getCell(2).value).toBe('350206001');
    expect(ws.getRow(5).getCell(2).value).toBe('350206002');
    expect(ws.getRow(5).getCell(14).value).toBe(4);
  });

  it('lists what waits on each user, nearest deadline first, with working days left or overdue', async () => {
    h.today = '2024-03-18';
    for (const code of [OWN, '350206-202403-0004'])
      expect((await call('ana', 'POST', `/api/patches/${code}/actions/dispatch`, {})).statusCode).toBe(200);
    h.today = '2024-03-28'; // verification was due on 2024-03-25, five working days after dispatch
    const todo = async (who: string) => (await call(who, 'GET', '/api/todo')).json();
    const dq = await todo('dianqian');
    expect(dq.patches).toEqual([
      expect.objectContaining({
        code: OWN,
        status: 'dispatched',
        deadline: 'verification',
        due: '2024-03-25',
        days_left: -3,
        actions: ['verify'],
      }),
    ]);
    expect((await todo('heshan')).patches.map((p: { code: string }) => p.code)).toEqual(['350206-202403-0004']);
    // the analyst owes the office check of the three never dispatched, in code order (no deadline)
    const ana = await todo('ana');
    expect(ana.patches.map((p: { code: string }) => p.code)).toEqual([
      '350206-202403-0001',
      '350206-202403-0003',
      '350206-202403-0005',
    ]);
    expect(ana.patches[0]).toMatchObject({ days_left: null, actions: ['dispatch', 'dismiss'] });
    expect(dq).toMatchObject({ total: 1, overdue: 1, limit: 200, offset: 0 });
    expect(ana).toMatchObject({ total: 3, overdue: 0 });
    // a page at a time: two, then the rest, the counts of the whole list on each
    const page = async (q: string) => (await call('ana', 'GET', `/api/todo?${q}`)).json();
    const [first, rest] = [await page('limit=2'), await page('limit=2&offset=2')];
    expect(first.patches.map((p: { code: string }) => p.code)).toEqual(['350206-202403-0001', '350206-202403-0003']);
    expect(rest.patches.map((p: { code: string }) => p.code)).toEqual(['350206-202403-0005']);
    expect([first.total, rest.total]).toEqual([3, 3]);
    expect((await call('ana', 'GET', '/api/todo?limit=0')).statusCode).toBe(400);
    expect((await todo('sup')).patches).toEqual([]);

    // the supervisor's board counts the same working days
    const board = (await call('sup', 'GET', '/api/reports/board?days=3')).json();
    const items = board.towns.flatMap((t: { overdue: unknown[]; due_soon: unknown[]; escalated: unknown[] }) => [
      ...t.overdue,
      ...t.due_soon,
      ...t.escalated,
    ]);
    expect(items).toContainEqual(expect.objectContaining({ code: OWN, days_left: -3 }));
    // (past due, but not yet marked overdue by the daily sweep: listed as due)
    expect(board.towns.find((t: { town_code: string }) => t.town_code === '350206001')).toMatchObject({
      overdue_total: 0,
      due_soon_total: 1,
    });
    // a province's board lists the most urgent of each list and counts the rest
    await call('ana', 'POST', '/api/patches/350206-202403-0001/actions/dispatch', {});
    await call('ana', 'POST', '/api/patches/350206-202403-0003/actions/dispatch', {});
    const sup = await userByName(h.run.db, 'sup');
    const capped = await supervisorBoard(h.run.db, h.env, sup, 3, 1);
    const dianqian = capped.towns.find((t) => t.town_code === '350206001')!;
    expect(dianqian.due_soon.map((i) => i.code)).toEqual([OWN]); // due on 2024-03-25, before 0003's
    expect(dianqian.due_soon_total).toBe(2);

    // by its cursor (next_after): the same patches in the same order, none twice, whatever the page size. 殿前's
    // list mixes a running deadline with none: 0003, verified illegal, waits on the town without one
    // (0003 was dispatched for the board above)
    await h.photo('dianqian', '350206-202403-0003', 'site.jpg');
    const verdict = await call('dianqian', 'POST', '/api/patches/350206-202403-0003/actions/verify', {
      result: 'illegal',
      violation: 'construction',
    });
    expect(verdict.statusCode, verdict.body).toBe(200);
    const mixed = (await todo('dianqian')).patches.map((p: { due: string | null }) => p.due);
    expect(mixed.some((d: string | null) => d) && mixed.some((d: string | null) => !d), String(mixed)).toBe(true);
    for (const who of ['ana', 'dianqian', 'heshan']) {
      const whole = (await todo(who)).patches.map((p: { code: string }) => p.code);
      for (const limit of [1, 2]) {
        const walked: string[] = [];
        let after: string | null = null;
        for (let i = 0; i <= whole.length; i++) {
          const q: string = `limit=${limit}${after ? `&after=${encodeURIComponent(after)}` : ''}`;
          const r: { patches: { code: string }[]; next_after: string | null } = (
            await call(who, 'GET', `/api/todo?${q}`)
          ).json();
          walked.push(...r.patches.map((p: { code: string }) => p.code));
          after = r.next_after;
          if (!after) break;
        }
        expect(walked, `${who}, pages of ${limit}`).toEqual(whole);
        expect(after, `${who}: the last page has no next`).toBeNull();
      }
    }
    const bad = await call('ana', 'GET', `/api/todo?after=${encodeURIComponent("'; drop table patch; --")}`);
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toMatch(/after/);
    // a day that does not exist is refused here, not at the database
    const feb30 = await call(
      'ana',
      'GET',
      `/api/todo?after=${encodeURIComponent('2024-02-30|2024-03|350206-202403-0001')}`,
    );
    expect(feb30.statusCode).toBe(400);
    expect(feb30.json().message).toMatch(/after/);
    const both = await call(
      'ana',
      'GET',
      `/api/todo?offset=1&after=${encodeURIComponent('|2024-03|350206-202403-0001')}`,
    );
    expect(both.statusCode).toBe(400);
    expect(both.json().message).toMatch(/offset/);
  });
});
