import { describe, expect, it } from 'vitest';
import { OWN, workflowApi } from './helpers/workflow-api.ts';

/** The corrections, merges and splits, through the HTTP API on real PostGIS. */
describe('workflow HTTP API: corrections, merges and splits', () => {
  const h = workflowApi();
  const { call } = h;

  it('lets analysts correct a town and merge patches, keeping the history', async () => {
    const rebuilt = { code: (await h.rebuiltPatch()).code };
    const moved = await call('ana', 'POST', `/api/patches/${rebuilt.code}/actions/correct_town`, {
      town_code: '350206002',
      reason: '界线核实',
    });
    expect(moved.json()).toMatchObject({ town_code: '350206002', town_name: '禾山街道' });
    expect((await call('dianqian', 'GET', `/api/patches/${rebuilt.code}`)).statusCode).toBe(404);
    expect((await call('heshan', 'GET', `/api/patches/${rebuilt.code}`)).statusCode).toBe(200);
    expect(
      (
        await call('ana', 'POST', `/api/patches/${rebuilt.code}/actions/correct_town`, {
          town_code: '999',
          reason: 'x',
        })
      ).statusCode,
    ).toBe(400);
    // to the town it is in already: refused, nothing recorded (not five identical corrections in the history)
    const same = await call('ana', 'POST', `/api/patches/${rebuilt.code}/actions/correct_town`, {
      town_code: '350206002',
      reason: '再次核实',
    });
    expect(same.statusCode).toBe(400);
    expect(same.json().message).toMatch(/in town 350206002 already/);
    const before = (await call('ana', 'GET', `/api/patches/${OWN}`)).json();
    // patches of two towns are not merged; put it back in OWN's town first
    expect(
      (await call('ana', 'POST', `/api/patches/${OWN}/actions/merge`, { other: rebuilt.code, reason: '同一建筑' }))
        .statusCode,
    ).toBe(400);
    expect(
      (
        await call('ana', 'POST', `/api/patches/${rebuilt.code}/actions/correct_town`, {
          town_code: before.town_code,
          reason: '复核界线',
        })
      ).statusCode,
    ).toBe(200);
    const merged = await call('ana', 'POST', `/api/patches/${OWN}/actions/merge`, {
      other: rebuilt.code,
      reason: '同一建筑',
    });
    expect(merged.statusCode).toBe(200);
    expect(merged.json().area_m2).toBeGreaterThan(before.area_m2);
    const gone = (await call('ana', 'GET', `/api/patches/${rebuilt.code}`)).json();
    expect(gone).toMatchObject({ status: 'merged', merged_into: OWN });
    expect(gone.history.map((h: { type: string }) => h.type)).toEqual([
      'rebuilt',
      'correct_town',
      'correct_town',
      'merged',
    ]);
    expect(
      (await call('ana', 'POST', `/api/patches/${OWN}/actions/merge`, { other: rebuilt.code, reason: 'again' }))
        .statusCode,
    ).toBe(409);
  });

  it('lets analysts split a patch into drawn parts with their own codes, areas and history', async () => {
    const code = '350206-202403-0001'; // 禾山, detected
    const { patch: p, left, right, whole } = await h.halves(code);
    expect(
      (
        await call('heshan', 'POST', `/api/patches/${code}/actions/split`, {
          parts: [left, right],
          reason: 'x',
        })
      ).statusCode,
    ).toBe(403);
    expect(
      (
        await call('ana', 'POST', `/api/patches/${code}/actions/split`, {
          parts: [whole, whole],
          reason: '两栋',
        })
      ).json().message,
    ).toMatch(/parts overlap/);
    const r = await call('ana', 'POST', `/api/patches/${code}/actions/split`, {
      parts: [left, right],
      reason: '两栋建筑',
    });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json().status).toBe('split');
    const ev = r.json().history.at(-1);
    expect(ev.type).toBe('split');
    const parts = ev.detail.parts as { code: string; area_m2: number }[];
    expect(parts).toHaveLength(2);
    expect(parts[0].area_m2 + parts[1].area_m2).toBeCloseTo(p.area_m2, 0);
    for (const part of parts) {
      const child = (await call('heshan', 'GET', `/api/patches/${part.code}`)).json();
      expect(child).toMatchObject({ split_from: code, status: 'detected', town_code: '350206002', month: '2024-03' });
      expect(child.code).toMatch(/^350206-202403-00\d\d$/);
    }
  });

  it('merges one pair in both directions at once without a deadlock: one merge wins, the other is refused', async () => {
    const { left, right } = await h.halves('350206-202403-0001');
    const split = await call('ana', 'POST', '/api/patches/350206-202403-0001/actions/split', {
      parts: [left, right],
      reason: '两栋建筑',
    });
    expect(split.statusCode, split.body).toBe(200);
    const children = await h.run
      .db('patch')
      .where('split_from', h.run.db('patch').where({ code: '350206-202403-0001' }).select('id'))
      .orderBy('code')
      .pluck('code');
    expect(children).toHaveLength(2);
    const [a, b] = children;
    // The interleaving that deadlocked when each merge locked its own patch first: b is held, the
    // merge b←a queues for b, the merge a←b takes a and queues for b; b is released, so b←a gets b
    // and wants a while a←b holds a and wants b. Each step waits until the database shows it queued.
    const lockWaits = async () =>
      Number(
        (
          await h.run.db.raw(
            `select count(*) n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and query ilike '%from "patch"%for update%'`,
          )
        ).rows[0].n,
      );
    const until = async (n: number) => {
      for (let i = 0; i < 200 && (await lockWaits()) < n; i++) await new Promise((r) => setTimeout(r, 25));
      expect(await lockWaits()).toBeGreaterThanOrEqual(n);
    };
    const holder = await h.run.db.transaction();
    await holder('patch').where({ code: b }).forUpdate().first();
    const second = call('ana', 'POST', `/api/patches/${b}/actions/merge`, { other: a, reason: '同一建筑' });
    await until(1);
    const first = call('ana', 'POST', `/api/patches/${a}/actions/merge`, { other: b, reason: '同一建筑' });
    await until(2);
    await holder.commit();
    const [r1, r2] = await Promise.all([first, second]);
    expect(
      [r1.statusCode, r2.statusCode].sort((a, b) => a - b),
      `${r1.body} ${r2.body}`,
    ).toEqual([200, 409]);
    const rows = await h.run.db('patch').whereIn('code', children).orderBy('code').select('code', 'status');
    expect(rows.map((r) => String(r.status)).sort()).toEqual(['detected', 'merged']);
  });
});
