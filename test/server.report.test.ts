import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { exportTrainingChips } from '../training/chips.ts';
import { workflowApi } from './helpers/workflow-api.ts';

type Polygon = { type: 'Polygon'; coordinates: number[][][] };

/**
 * Patches the imagery did not give (issue 32): a town reports what it found on patrol (巡查发现), an analyst
 * what the public reported (群众举报), each drawn on a month's imagery. The fixtures' two buildings inside a
 * valid permit are new in March but no patch (the permit covers them): a town may still report one, and
 * its verdict is a training label like a batch's patch.
 */
describe('reported patches (巡查发现, 群众举报)', () => {
  const h = workflowApi();
  const fixturesDir = inject('fixturesDir');
  const truth = JSON.parse(readFileSync(join(fixturesDir, 'truth.geojson'), 'utf8')) as {
    features: { properties: { id: string }; geometry: { type: 'Polygon'; coordinates: number[][][] } }[];
  };
  /** A truth outline (EPSG:4548) in lon/lat, grown by `grow` m. */
  async function outline(id: string, grow = 0): Promise<Polygon> {
    const g = truth.features.find((f) => f.properties.id === id)!.geometry;
    const r = await h.run.db.raw(
      `select ST_AsGeoJSON(ST_Transform(ST_Buffer(ST_SetSRID(ST_GeomFromGeoJSON(?), 4548), ?, 'join=mitre'), 4326), 8)::json as g`,
      [JSON.stringify(g), grow],
    );
    return r.rows[0].g as Polygon;
  }
  const report = (who: string, body: Record<string, unknown>) => h.call(who, 'POST', '/api/patches', body);

  it("takes a town's patrol find onto its own list, dispatched, once per request key", async () => {
    const body = {
      outline: await outline('permitted-1'),
      month: '2024-03',
      source: 'patrol',
      visible: true,
      note: '巡查发现，正在施工',
      request_key: 'patrol-0001',
    };
    const r = await report('dianqian', body);
    expect(r.statusCode, r.body).toBe(201);
    const p = r.json();
    // the district's sixth code this month, after the batch's five
    expect(p).toMatchObject({
      code: '350206-202403-0006',
      month: '2024-03',
      baseline_month: '2024-02',
      status: 'dispatched',
      town_code: '350206001',
      source: 'patrol',
      visible: true,
      model: null,
      mean_prob: null,
      building_relation: 'new',
      verify_due: '2024-03-25', // 5 working days from Monday 18 March
    });
    expect(p.area_m2).toBeGreaterThan(470);
    expect(p.area_m2).toBeLessThan(500);
    expect(p.history).toHaveLength(1);
    expect(p.history[0]).toMatchObject({ type: 'reported', actor: 'dianqian', to_status: 'dispatched' });
    expect(p.history[0].detail).toMatchObject({ source: 'patrol', visible: true, note: '巡查发现，正在施工' });
    expect(p.allowed_actions).toContain('verify');

    // the same request again (a second tap, a retry after a lost answer): the same patch, nothing new
    const again = await report('dianqian', body);
    expect(again.statusCode, again.body).toBe(200);
    expect(again.json().code).toBe('350206-202403-0006');
    const audited = await h.run
      .db('audit_event')
      .where({ path: '/api/patches', method: 'POST' })
      .orderBy('id')
      .pluck('status');
    expect(audited).toEqual([201, 200]);
    // drawn again under a new key, it is an open patch now
    const twice = await report('dianqian', { ...body, request_key: 'patrol-0002' });
    expect(twice.statusCode, twice.body).toBe(409);
    expect(twice.json().message).toContain('350206-202403-0006');
    expect(await h.run.db('patch').count({ n: '*' })).toEqual([{ n: '6' }]);

    // on the town's list and in its month's export; another town sees none of it
    const list = (await h.call('dianqian', 'GET', '/api/patches?month=2024-03')).json();
    expect(list.patches.map((x: { code: string }) => x.code)).toContain('350206-202403-0006');
    expect((await h.call('heshan', 'GET', '/api/patches/350206-202403-0006')).statusCode).toBe(404);
    // the list by where patches came from: the town's patrol finds, the batch's
    const by = async (who: string, source: string) =>
      (await h.call(who, 'GET', `/api/patches?month=2024-03&source=${source}`))
        .json()
        .patches.map((x: { code: string; source: string }) => `${x.code} ${x.source}`);
    expect(await by('ana', 'patrol')).toEqual(['350206-202403-0006 patrol']);
    expect(await by('ana', 'imagery')).toHaveLength(5);
    expect(await by('heshan', 'patrol')).toEqual([]);
    expect((await h.call('ana', 'GET', '/api/patches?month=2024-03&source=drone')).statusCode).toBe(400);
    const csv = await h.call('dianqian', 'GET', '/api/export?month=2024-03&format=csv');
    expect(csv.statusCode, csv.body).toBe(200);
    const lines = csv.body.replace(/^\uFEFF/, '').split(/\r?\n/);
    const col = lines[0].split(',').indexOf('来源');
    expect(col).toBeGreaterThan(0);
    const row = lines.find((l) => l.startsWith('350206-202403-0006'))!;
    expect(row.split(',')[col]).toBe('巡查发现');
    expect(lines.find((l) => l.startsWith('350206-202403-0002'))!.split(',')[col]).toBe('卫片监测');

    // verified on site like any patch
    await h.photo('dianqian', '350206-202403-0006', 'site.jpg');
    const v = await h.call('dianqian', 'POST', '/api/patches/350206-202403-0006/actions/verify', {
      result: 'illegal',
      violation: 'construction',
    });
    expect(v.statusCode, v.body).toBe(200);
    expect(v.json().status).toBe('illegal');
  });

  it('waits in the office when an analyst enters a complaint; a confirmed one is a training label, an unseen one is not', async () => {
    const r = await report('ana', {
      outline: await outline('permitted-2'),
      source: 'complaint', // no month: the latest with a completed batch
      visible: true,
      request_key: 'hotline-12345-1',
    });
    expect(r.statusCode, r.body).toBe(201);
    expect(r.json()).toMatchObject({
      code: '350206-202403-0006',
      status: 'detected',
      source: 'complaint',
      verify_due: null,
    });
    // not seen on the imagery (built after it): a patch, but no label
    const unseen = await report('ana', {
      outline: await outline('permitted-1'),
      source: 'complaint',
      visible: false,
      request_key: 'hotline-12345-2',
    });
    expect(unseen.statusCode, unseen.body).toBe(201);
    for (const code of ['350206-202403-0006', '350206-202403-0007']) {
      expect((await h.call('ana', 'POST', `/api/patches/${code}/actions/dispatch`, {})).statusCode).toBe(200);
      const v = await h.call('dianqian', 'POST', `/api/patches/${code}/actions/verify`, {
        result: 'legal',
        permit_ref: '厦湖建许2024-0012',
      });
      expect(v.statusCode, v.body).toBe(200);
    }
    const dir = mkdtempSync(join(tmpdir(), 'tuban-report-chips-'));
    try {
      const ex = await exportTrainingChips(h.run.db, { month: '2024-03', outDir: dir });
      const chip = ex.chips.find((c) => c.code === '350206-202403-0006');
      expect(chip).toMatchObject({ label: 'change', source: 'complaint', verdict: 'legal' });
      expect(chip!.changePixels).toBeGreaterThan(1500); // its ~600 m² at 0.5 m
      expect(ex.chips.find((c) => c.code === '350206-202403-0007')).toBeUndefined();
      expect(ex.skipped.find((s) => s.code === '350206-202403-0007')).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps a split reported patch reported, each part with its reporter', async () => {
    const r = await report('ana', {
      outline: await outline('permitted-2'),
      source: 'complaint',
      visible: true,
      request_key: 'hotline-12345-9',
    });
    expect(r.statusCode, r.body).toBe(201);
    const { left, right } = await h.halves(r.json().code);
    // a part with an empty ring is refused naming it (the ring check once read past its end: 500)
    const empty = await h.call('ana', 'POST', `/api/patches/${r.json().code}/actions/split`, {
      parts: [left, { type: 'Polygon', coordinates: [[]] }],
      reason: '两户分别建设',
    });
    expect(empty.statusCode, empty.body).toBe(400);
    expect(empty.json().message).toMatch(/parts\.1\.coordinates\.0/);
    const s = await h.call('ana', 'POST', `/api/patches/${r.json().code}/actions/split`, {
      parts: [left, right],
      reason: '两户分别建设',
    });
    expect(s.statusCode, s.body).toBe(200);
    const parts = await h.run.db('patch').whereNot({ source: 'imagery' }).orderBy('code');
    expect(parts.map((p) => [p.code, p.status, p.source, p.visible, p.reported_by, p.model_name])).toEqual([
      ['350206-202403-0006', 'split', 'complaint', true, 'ana', null],
      ['350206-202403-0007', 'detected', 'complaint', true, 'ana', null],
      ['350206-202403-0008', 'detected', 'complaint', true, 'ana', null],
    ]);
  });

  it('refuses what is not a report to make, naming the field and the reason', async () => {
    const base = { month: '2024-03', source: 'patrol', visible: true };
    let n = 0;
    /** A report by `who` (a patrol find around the permitted building on 2024-03, unless `changes` say
     * otherwise), refused with `status` and, when given, a message holding `says`. */
    const refused = async (who: string, changes: Record<string, unknown>, status: number, says?: RegExp | string) => {
      const r = await report(who, {
        ...base,
        outline: await outline('permitted-1'),
        ...changes,
        request_key: `refused-${++n}-key`,
      });
      expect(r.statusCode, r.body).toBe(status);
      if (says !== undefined) expect(r.json().message).toMatch(says);
    };
    // another town's ground
    await refused('heshan', {}, 403, /350206001|殿前/);
    // what is a patch already
    await refused('dianqian', { outline: await outline('residential', 2) }, 409, '350206-202403-0002');
    // roles that do not report
    await refused('sup', {}, 403);
    // a month without a batch; a ring left open; too large; outside every town; off the imagery
    await refused('dianqian', { month: '2024-05' }, 400, '2024-05');
    const ring = (await outline('permitted-1')).coordinates[0];
    await refused(
      'dianqian',
      { outline: { type: 'Polygon', coordinates: [ring.slice(0, -1)] } },
      400,
      /outline\.coordinates\.0: a ring ends where it starts/,
    );
    // an empty ring is refused the same way (its check once read past the end of it: 500)
    await refused('dianqian', { outline: { type: 'Polygon', coordinates: [[]] } }, 400, /outline\.coordinates\.0/);
    // a town reports on the latest imagery only
    await refused('dianqian', { month: '2024-02' }, 400, /latest imagery \(2024-03\), not on 2024-02/);
    await refused(
      'ana',
      { outline: await outline('permitted-1', 200) },
      400,
      /outline: [\d.]+ m² is larger than 100000 m²/,
    );
    const far = await outline('permitted-1');
    const shifted = { type: 'Polygon', coordinates: [far.coordinates[0].map(([x, y]) => [x + 0.5, y])] };
    await refused('ana', { outline: shifted }, 400, /outline: it lies outside every town/);
    expect(await h.run.db('patch').count({ n: '*' })).toEqual([{ n: '5' }]);
  });
});
