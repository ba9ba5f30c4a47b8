import { describe, expect, it } from 'vitest';
import { OWN, workflowApi } from './helpers/workflow-api.ts';

/**
 * The trend reads the tally the patches' triggers keep (migration 029), not the patches: after every
 * kind of change a patch goes through — a batch's emit, verdicts, a town corrected, a merge, a split, a
 * batch rolled back — the tally equals the count made from the patches themselves, and so does the trend
 * the board shows, for the city and for a town.
 */
describe('the monthly tally behind the trend', () => {
  const h = workflowApi();
  const { call } = h;

  /** Live patches, their area and the illegal ones per month and town, counted from the patches. */
  async function counted() {
    return (
      await h.run.db.raw(
        `select month, coalesce(town_code, '') as town_code, count(*)::int as live,
                round(sum(area_m2::numeric), 6)::float8 as area, count(*) filter (where verification_result = 'illegal')::int as illegal
         from patch where patch_is_live(status) group by 1, 2 order by 1, 2`,
      )
    ).rows;
  }
  async function tallied() {
    return (
      await h.run.db.raw(
        `select month, town_code, live, round(live_area_m2, 6)::float8 as area, illegal
         from patch_month_tally where live <> 0 or illegal <> 0 or live_area_m2 <> 0 order by 1, 2`,
      )
    ).rows;
  }
  async function expectTallyRight(when: string) {
    const direct = await counted();
    expect(direct.length, when).toBeGreaterThan(0);
    expect(await tallied(), when).toEqual(direct);
    // and the board's trend, for the city and for 殿前's clerk
    for (const [who, town] of [
      ['sup', null],
      ['dianqian', '350206001'],
    ] as const) {
      const trend = (await call(who, 'GET', '/api/reports/trend?month=2024-04&months=3')).json();
      const months = trend.months ?? trend;
      for (const m of ['2024-03', '2024-04']) {
        const rows = direct.filter(
          (r: { month: string; town_code: string }) => r.month === m && (!town || r.town_code === town),
        );
        const row = (months as { month: string; new_patches: number; new_area_m2: number; illegal: number }[]).find(
          (x) => x.month === m,
        );
        expect(row, `${when}: ${who} ${m}`).toMatchObject({
          new_patches: rows.reduce((s: number, r: { live: number }) => s + r.live, 0),
          illegal: rows.reduce((s: number, r: { illegal: number }) => s + r.illegal, 0),
        });
        expect(row!.new_area_m2).toBeCloseTo(
          rows.reduce((s: number, r: { area: number }) => s + r.area, 0),
          1,
        );
      }
    }
  }

  it('follows emits, verdicts, corrections, merges, splits and a batch taken back', async () => {
    await expectTallyRight('after the March batch');
    // a verdict of illegal, a closing; then April's batch (a rebuilt patch) — rebuiltPatch walks 0005 to closed
    const { code: rebuilt } = await h.rebuiltPatch();
    await expectTallyRight('after a patch walked to closed and the April batch');
    expect((await tallied()).some((r: { illegal: number }) => r.illegal > 0)).toBe(true);

    const moved = await call('ana', 'POST', `/api/patches/${rebuilt}/actions/correct_town`, {
      town_code: '350206002',
      reason: '界线核实',
    });
    expect(moved.statusCode, moved.body).toBe(200);
    await expectTallyRight('after a town corrected');
    const back = await call('ana', 'POST', `/api/patches/${rebuilt}/actions/correct_town`, {
      town_code: '350206001',
      reason: '复核界线',
    });
    expect(back.statusCode, back.body).toBe(200);
    const merged = await call('ana', 'POST', `/api/patches/${OWN}/actions/merge`, {
      other: rebuilt,
      reason: '同一建筑',
    });
    expect(merged.statusCode, merged.body).toBe(200);
    await expectTallyRight('after a merge across months');

    const { left, right } = await h.halves('350206-202403-0001');
    const split = await call('ana', 'POST', '/api/patches/350206-202403-0001/actions/split', {
      parts: [left, right],
      reason: '两栋建筑',
    });
    expect(split.statusCode, split.body).toBe(200);
    await expectTallyRight('after a split');

    // April's batch taken back as maintenance does it (past the history's append-only triggers)
    await h.run.db.transaction(async (trx) => {
      await trx.raw('set local session_replication_role = replica');
      const april = await trx('batch').where({ month: '2024-04' }).first('id');
      await trx.raw(`delete from patch_event where (detail->>'batch_id')::bigint = ?`, [april.id]);
      await trx('patch_observation').where({ batch_id: april.id }).delete();
      await trx('batch_candidate').where({ batch_id: april.id }).delete();
      await trx('patch').where({ batch_id: april.id }).update({ merged_into: null });
      await trx('patch').where({ batch_id: april.id }).delete();
    });
    await expectTallyRight('after April taken back');
  });
});
