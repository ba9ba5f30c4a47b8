import { readFileSync, statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { listPatches } from '../store/batch.ts';
import { registerImagery } from '../imagery/register.ts';
import { runBatch, stageDemolitions, type WorldBox } from './helpers/batch.ts';
import { JPEG } from './helpers/hostile.ts';
import { workflowApi } from './helpers/workflow-api.ts';

/**
 * 回头看 on the fixtures (issue 28): all five March patches are ordered demolished; April's imagery
 * shows two of them demolished (the February ground back), a quarter of one torn down, one still
 * standing, and the tile under the fifth damaged. April's batch judges each from its imagery; nothing it sees
 * of the demolitions becomes a patch; the board and the close action use the judgements.
 */
describe('回头看: ordered demolitions judged by the next month’s imagery', () => {
  const h = workflowApi();
  const fixturesDir = inject('fixturesDir');
  const truth = JSON.parse(readFileSync(join(fixturesDir, 'truth.geojson'), 'utf8')) as {
    features: { properties: { id: string }; geometry: { coordinates: number[][][] } }[];
  };
  const box = (id: string, grow = 0): WorldBox => {
    const ring = truth.features.find((f) => f.properties.id === id)!.geometry.coordinates[0];
    const xs = ring.map((p) => p[0]),
      ys = ring.map((p) => p[1]);
    return [Math.min(...xs) - grow, Math.min(...ys) - grow, Math.max(...xs) + grow, Math.max(...ys) + grow];
  };
  // the fixture batch's patches (test/helpers/workflow-api.ts): 0001 expired permit (禾山, tile r0c1),
  // 0002 residential (殿前), 0003 ecological (殿前), 0004 farmland (禾山), 0005 across the seam (殿前)
  const P = {
    damaged: '350206-202403-0001',
    standing: '350206-202403-0002',
    closedGone: '350206-202403-0003',
    part: '350206-202403-0004',
    gone: '350206-202403-0005',
  };

  async function act(who: string, code: string, action: string, body: Record<string, unknown> = {}) {
    const r = await h.call(who, 'POST', `/api/patches/${code}/actions/${action}`, body);
    expect(r.statusCode, `${action} ${code}: ${r.body}`).toBe(200);
    return r.json();
  }
  async function orderDemolished(code: string, town: string) {
    await act('ana', code, 'dispatch');
    await h.photo(town, code, 'site.jpg'); // the verdict's photo of the site
    await act(town, code, 'verify', { result: 'illegal', violation: 'construction' });
    await act(town, code, 'rectify', { measure: 'demolish' });
  }
  async function reportRectified(code: string, town: string) {
    const up = await h.call(town, 'POST', `/api/patches/${code}/evidence?filename=done.jpg`, JPEG, {
      'content-type': 'image/jpeg',
    });
    expect(up.statusCode, up.body).toBe(201);
    await act(town, code, 'report_rectified');
  }

  /** The five patches ordered demolished and walked on; April staged, registered, one tile damaged; April's batch. */
  async function april() {
    await orderDemolished(P.damaged, 'heshan');
    await orderDemolished(P.standing, 'dianqian');
    await reportRectified(P.standing, 'dianqian'); // a false report: the building stands in April
    await h.walkToClosed(P.closedGone);
    await orderDemolished(P.part, 'heshan');
    await orderDemolished(P.gone, 'dianqian');
    const dir = join(h.run.config.dataDir, 'imagery-2024-04');
    const files = await stageDemolitions(fixturesDir, '2024-03', dir, '2024-02', [
      { box: box('ecological', 2) },
      { box: box('seam', 2) },
      { box: box('farmland', 2), share: 0.23 }, // its western quarter torn down: unclear, someone must look
    ]);
    const reg = await registerImagery(h.run.db, h.run.config, '2024-04', [dir], '2024-04-12');
    expect(reg.refused).toEqual([]);
    const r0c1 = files.find((f) => f.endsWith('r0c1.tif'))!;
    truncateSync(r0c1, Math.floor(statSync(r0c1).size / 3));
    h.today = '2024-04-15';
    return runBatch(h.run.db, h.run.config, '2024-04', '2024-03');
  }

  it('judges each ordered demolition gone, standing, unclear or without imagery, in history, lists and exports', async () => {
    const summary = await april();
    const detail = async (code: string) => (await h.call('sup', 'GET', `/api/patches/${code}`)).json();
    const checks = Object.fromEntries(
      await Promise.all(Object.entries(P).map(async ([k, code]) => [k, (await detail(code)).imagery_check])),
    );
    expect(Object.fromEntries(Object.entries(checks).map(([k, c]) => [k, (c as { result: string }).result]))).toEqual({
      damaged: 'no_imagery',
      standing: 'standing',
      closedGone: 'gone',
      part: 'unclear',
      gone: 'gone',
    });
    for (const c of Object.values(checks) as { month: string; model_name: string; model_version: string }[])
      expect(c).toMatchObject({ month: '2024-04', model_name: 'tuban-lookback', model_version: '1.0' });
    expect(checks.gone.score).toBeGreaterThan(checks.part.score);
    expect(checks.part.score).toBeGreaterThan(checks.standing.score);
    expect(checks.damaged.score).toBeNull();
    expect(summary.lookback).toEqual({ gone: 2, standing: 1, unclear: 1, no_imagery: 1 });

    // each judgement is a history event, saying why there was nothing to judge on
    const history = (await detail(P.damaged)).history as { type: string; detail: Record<string, unknown> }[];
    const ev = history.filter((e) => e.type === 'imagery_check');
    expect(ev).toHaveLength(1);
    expect(ev[0].detail).toMatchObject({ month: '2024-04', result: 'no_imagery' });
    expect(String(ev[0].detail.reason)).toMatch(/failed/);

    // a disappearance is not construction: no new patch, no 复建 of the closed one, no re-detection
    expect(summary.patches.new).toBe(0);
    expect(await h.run.db('patch').where({ month: '2024-04' })).toEqual([]);
    expect(summary.demolitions).toBeGreaterThanOrEqual(1);
    const gone = await detail(P.gone);
    expect(gone.observations.map((o: { month: string }) => o.month)).toEqual(['2024-03']);

    // lists, the CLI's list and the exports carry the latest judgement
    const list = (await h.call('sup', 'GET', '/api/patches?month=2024-03&check=gone')).json();
    expect(list.patches.map((p: { code: string }) => p.code).sort()).toEqual([P.closedGone, P.gone]);
    const cli = await listPatches(h.run.db, '2024-03');
    expect(cli.find((p) => p.code === P.standing)!.imagery_check).toMatchObject({
      result: 'standing',
      month: '2024-04',
    });
    const csv = (await h.call('sup', 'GET', '/api/export?month=2024-03&format=csv')).body;
    const [head, ...rows] = csv
      .replace(/^\uFEFF/, '')
      .trim()
      .split(/\r?\n/);
    const col = head.split(',').indexOf('回头看结果');
    expect(col).toBeGreaterThan(0);
    expect(rows.find((r) => r.startsWith(P.gone))!.split(',')[col]).toBe('已拆除');

    // the chip of the judged month, beside before and after
    const chip = await h.call('sup', 'GET', `/api/patches/${P.gone}/chips/check.png`);
    expect(chip.statusCode).toBe(200);
    expect(chip.headers['content-type']).toBe('image/png');
  });

  it('shows supervisors the false reports and the unreported demolitions, and asks a reason to close a standing one', async () => {
    await april();
    const board = (await h.call('sup', 'GET', '/api/reports/board')).json();
    const dianqian = board.towns.find((t: { town_code: string }) => t.town_code === '350206001');
    expect(dianqian.reported_standing.map((i: { code: string }) => i.code)).toEqual([P.standing]);
    expect(dianqian.gone_unreported.map((i: { code: string }) => i.code)).toEqual([P.gone]);
    // a town sees its own lists only
    const own = (await h.call('heshan', 'GET', '/api/reports/board')).json();
    expect(own.towns.map((t: { town_code: string }) => t.town_code)).not.toContain('350206001');

    const refused = await h.call('sup', 'POST', `/api/patches/${P.standing}/actions/close`, {});
    expect(refused.statusCode).toBe(400);
    expect(refused.json().message).toMatch(/2024-04.*still standing.*reason/);
    const closed = await act('sup', P.standing, 'close', { reason: '现场复核已拆除，影像为拆除前拍摄' });
    expect(closed.status).toBe('closed');
    const ev = closed.history.at(-1);
    expect(ev.type).toBe('close');
    expect(ev.detail).toMatchObject({
      reason: '现场复核已拆除，影像为拆除前拍摄',
      imagery_check: { result: 'standing' },
    });
    // closed against that same judgement, it leaves the list
    const after = (await h.call('sup', 'GET', '/api/reports/board')).json();
    const t = after.towns.find((x: { town_code: string }) => x.town_code === '350206001');
    expect(t.reported_standing).toEqual([]);
  });
});
