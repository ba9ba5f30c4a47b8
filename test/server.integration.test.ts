import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { buildServer } from '../server/app.ts';
import { sweepOverdue } from '../store/overdue.ts';
import { createUser, issueToken } from '../store/users.ts';
import { addDays } from '../workflow/calendar.ts';
import { runBatch } from './helpers/batch.ts';
import { freshRun, type Run } from './helpers/run.ts';
import { cleanup } from './helpers/services.ts';
import { ACTION_NAMES, apiCaller, testWorkflowEnv } from './helpers/api.ts';

const JPEG = Buffer.from([
  0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 0xff, 0xd9,
]);

/** The workflow API on real PostGIS, with the fixture batch's five patches. */
describe('workflow HTTP API', () => {
  const fixturesDir = inject('fixturesDir');
  let run: Run;
  let app: FastifyInstance;
  let today = '2024-03-18';
  const env = testWorkflowEnv(() => today);
  const token: Record<string, string> = {};
  // Patches of the fixture batch: town 350206001 (殿前) has 0002, 0003, 0005; 350206002 (禾山) has 0001, 0004.
  const OWN = '350206-202403-0002';
  const OTHER = '350206-202403-0001';

  const call = apiCaller(() => app, token);

  // Every scenario starts from its own fresh schema with the fixture batch's five patches, today on
  // 2024-03-18: none depends on what another left behind, in any order (vitest --sequence.shuffle).
  beforeEach(async () => {
    today = '2024-03-18';
    run = await freshRun(fixturesDir);
    await runBatch(run.db, run.config, '2024-03', '2024-02');
    await createUser(run.db, { username: 'ana', role: 'analyst', password: 'analyst-pass' });
    await createUser(run.db, { username: 'sup', role: 'supervisor' });
    await createUser(run.db, { username: 'adm', role: 'admin' });
    await createUser(run.db, { username: 'dianqian', role: 'town', townCode: '350206001', displayName: '殿前街道办' });
    await createUser(run.db, { username: 'heshan', role: 'town', townCode: '350206002' });
    for (const u of ['sup', 'adm', 'dianqian', 'heshan']) token[u] = (await issueToken(run.db, u)).token;
    app = await buildServer({ db: run.db, config: run.config, env, evidenceMaxBytes: 1024 });
    const login = await call(null, 'POST', '/api/login', { username: 'ana', password: 'analyst-pass' });
    expect(login.statusCode).toBe(200);
    token.ana = login.json().token;
  });
  afterEach(async () => {
    await app?.close();
    await cleanup(run.db, run.config);
  });

  /** Takes a 殿前 patch the shortest way from detected to closed: dispatch, verify illegal, demolish, evidence, report, close. */
  async function walkToClosed(code: string): Promise<void> {
    const steps: [string, string, Record<string, unknown>][] = [
      ['ana', 'dispatch', {}],
      ['dianqian', 'verify', { result: 'illegal', violation: 'construction' }],
      ['dianqian', 'rectify', { measure: 'demolish' }],
    ];
    for (const [who, action, body] of steps) {
      const r = await call(who, 'POST', `/api/patches/${code}/actions/${action}`, body);
      expect(r.statusCode, `${action}: ${r.body}`).toBe(200);
    }
    const up = await call('dianqian', 'POST', `/api/patches/${code}/evidence?filename=done.jpg`, JPEG, {
      'content-type': 'image/jpeg',
    });
    expect(up.statusCode, up.body).toBe(201);
    expect((await call('dianqian', 'POST', `/api/patches/${code}/actions/report_rectified`, {})).statusCode).toBe(200);
    expect((await call('sup', 'POST', `/api/patches/${code}/actions/close`, {})).json().status).toBe('closed');
  }

  /** The April batch against February, after 0005 was demolished and closed: 0005's building comes back as a rebuilt patch. */
  async function rebuiltPatch(): Promise<{ code: string; summary: Awaited<ReturnType<typeof runBatch>> }> {
    await walkToClosed('350206-202403-0005');
    const { copyMonth } = await import('./helpers/batch.ts');
    const { registerImagery } = await import('../store/imagery.ts');
    const dir = `${run.config.dataDir}/2024-04`;
    copyMonth(fixturesDir, '2024-03', dir);
    await registerImagery(run.db, run.config, '2024-04', [dir]);
    const summary = await runBatch(run.db, run.config, '2024-04', '2024-02'); // against February: the buildings are "new" again
    return { code: (await run.db('patch').where({ month: '2024-04' }).first()).code, summary };
  }

  /** Two boxes that cut a patch across the middle of its bounding box, in lon/lat. */
  async function halves(code: string) {
    const p = (await call('ana', 'GET', `/api/patches/${code}`)).json();
    const ring = (
      p.geometry.type === 'MultiPolygon' ? p.geometry.coordinates[0][0] : p.geometry.coordinates[0]
    ) as number[][];
    const xs = ring.map((c) => c[0]),
      ys = ring.map((c) => c[1]);
    const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
    const xm = (x0 + x1) / 2;
    const box = (a: number, b: number) => ({
      type: 'Polygon',
      coordinates: [
        [
          [a, y0 - 1e-4],
          [b, y0 - 1e-4],
          [b, y1 + 1e-4],
          [a, y1 + 1e-4],
          [a, y0 - 1e-4],
        ],
      ],
    });
    return { patch: p, left: box(x0 - 1e-4, xm), right: box(xm, x1 + 1e-4), whole: box(x0 - 1e-4, x1 + 1e-4) };
  }

  it('refuses requests without a valid token, and logins with a wrong password', async () => {
    expect((await call(null, 'GET', '/api/patches')).statusCode).toBe(401);
    expect(
      (await app.inject({ method: 'GET', url: '/api/patches', headers: { authorization: 'Bearer nope' } })).statusCode,
    ).toBe(401);
    expect((await call(null, 'POST', '/api/login', { username: 'ana', password: 'wrong' })).statusCode).toBe(401);
    // a percent-encoded path reaches the same routes: it must need the token too
    for (const url of [
      '/%61pi/export?month=2024-03&format=geojson',
      '/%61pi/patches',
      '/api/%70atches',
      '/%61pi/map/config',
    ]) {
      expect((await app.inject({ method: 'GET', url })).statusCode, url).toBe(401);
    }
    const { rows } = await run.db.raw('select token_hash from api_token limit 1');
    expect(rows[0].token_hash).toMatch(/^[0-9a-f]{64}$/); // only hashes are stored
    expect(Object.values(token)).not.toContain(rows[0].token_hash);
  });

  it('permission matrix: town users never see or touch another town, in lists, counts, details, actions, evidence or reports', async () => {
    const roles = ['ana', 'sup', 'adm', 'dianqian', 'heshan'] as const;
    const townOf: Record<string, string | null> = {
      ana: null,
      sup: null,
      adm: null,
      dianqian: '350206001',
      heshan: '350206002',
    };
    const upload = await call('dianqian', 'POST', `/api/patches/${OWN}/evidence?filename=site.jpg`, JPEG, {
      'content-type': 'image/jpeg',
    });
    expect(upload.statusCode).toBe(201);
    const evidenceId = upload.json().id;
    let checks = 0;
    for (const who of roles) {
      const town = townOf[who];
      const list = await call(who, 'GET', '/api/patches?month=2024-03');
      expect(list.statusCode).toBe(200);
      const codes = list.json().patches.map((p: { code: string }) => p.code);
      expect(list.json().total, who).toBe(town === '350206001' ? 3 : town === '350206002' ? 2 : 5);
      if (town) expect(list.json().patches.every((p: { town_code: string }) => p.town_code === town)).toBe(true);
      // asking for the other town by filter gives nothing, not the other town's rows
      if (town)
        expect(
          (await call(who, 'GET', `/api/patches?town=${town === '350206001' ? '350206002' : '350206001'}`)).json()
            .total,
        ).toBe(0);
      for (const code of [OWN, OTHER]) {
        const visible = !town || (code === OWN ? town === '350206001' : town === '350206002');
        expect((await call(who, 'GET', `/api/patches/${code}`)).statusCode, `${who} GET ${code}`).toBe(
          visible ? 200 : 404,
        );
        expect(codes.includes(code), `${who} list has ${code}`).toBe(visible);
        // an action on an invisible patch is 404 (no leak), on a visible one 403/409/200 by role and state
        const act = await call(who, 'POST', `/api/patches/${code}/actions/escalate`, { reason: 'matrix' });
        if (!visible) expect(act.statusCode, `${who} escalate ${code}`).toBe(404);
        else expect(act.statusCode, `${who} escalate ${code}`).toBe(who === 'sup' ? 409 : 403);
        checks += 3;
      }
      if (town) {
        const foreign = town === '350206001' ? OTHER : OWN;
        for (const action of ACTION_NAMES) {
          expect(
            (await call(who, 'POST', `/api/patches/${foreign}/actions/${action}`, {})).statusCode,
            `${who} ${action} on ${foreign}`,
          ).toBe(404);
        }
        const up = await call(who, 'POST', `/api/patches/${foreign}/evidence?filename=x.jpg`, JPEG, {
          'content-type': 'image/jpeg',
        });
        expect(up.statusCode, `${who} upload to ${foreign}`).toBe(404);
        const board = (await call(who, 'GET', '/api/reports/board?days=60')).json();
        expect(board.towns.every((t: { town_code: string }) => t.town_code === town)).toBe(true);
        checks += 14;
      }
      if (town)
        expect(
          (await call(who, 'POST', `/api/patches/${town === '350206001' ? OTHER : OWN}/notes`, { text: '偷看' }))
            .statusCode,
          `${who} note on foreign`,
        ).toBe(404);
      const ev = await call(who, 'GET', `/api/evidence/${evidenceId}`);
      expect(ev.statusCode, `${who} evidence`).toBe(town === '350206002' ? 404 : 200);
      const report = await call(who, 'GET', '/api/reports/monthly?month=2024-03');
      expect(
        report.json().towns.map((t: { town_code: string }) => t.town_code),
        `${who} report`,
      ).toEqual(town ? [town] : expect.arrayContaining(['350206001', '350206002']));
      const usersList = await call(who, 'GET', '/api/users');
      expect(usersList.statusCode, `${who} users`).toBe(who === 'adm' ? 200 : 403);
      const newUser = await call(who, 'POST', '/api/users', { username: `made-by-${who}`, role: 'analyst' });
      expect(newUser.statusCode, `${who} create user`).toBe(who === 'adm' ? 201 : 403);
      const newToken = await call(who, 'POST', '/api/users/dianqian/tokens', {});
      expect(newToken.statusCode, `${who} issue token`).toBe(who === 'adm' ? 201 : 403);
      const me = await call(who, 'GET', '/api/me');
      expect(me.json()).toMatchObject({
        role: { ana: 'analyst', sup: 'supervisor', adm: 'admin', dianqian: 'town', heshan: 'town' }[who],
        townCode: town,
      });
      checks += 7;
    }
    expect(checks).toBe(roles.length * 13 + 2 * 14);
  });

  it('walks a patch through the whole lifecycle and refuses illegal moves with 409 naming the state', async () => {
    const code = '350206-202403-0005';
    const early = await call('dianqian', 'POST', `/api/patches/${code}/actions/verify`, {
      result: 'illegal',
      violation: 'construction',
    });
    expect(early.statusCode).toBe(409);
    expect(early.json().message).toMatch(
      /is detected; verify needs dispatched\. Allowed from detected: dispatch \(analyst\)/,
    );

    today = '2024-02-07'; // Wednesday before Spring Festival
    const d = await call('ana', 'POST', `/api/patches/${code}/actions/dispatch`, {});
    expect(d.statusCode).toBe(200);
    expect(d.json()).toMatchObject({ status: 'dispatched', verify_due: '2024-02-20' }); // 5 working days: 8, 9, 18 (make-up Sunday), 19, 20
    expect(
      (await call('dianqian', 'POST', `/api/patches/${code}/actions/verify`, { result: 'legal' })).json().message,
    ).toMatch(/legal result needs permit_ref/);
    expect(
      (await call('dianqian', 'POST', `/api/patches/${code}/actions/verify`, { result: 'maybe' })).statusCode,
    ).toBe(400);
    today = '2024-02-20';
    const v = await call('dianqian', 'POST', `/api/patches/${code}/actions/verify`, {
      result: 'illegal',
      violation: 'construction',
      note: '现场核查属实',
    });
    expect(v.json()).toMatchObject({ status: 'illegal', verification_result: 'illegal' });
    const r = await call('dianqian', 'POST', `/api/patches/${code}/actions/rectify`, { measure: 'demolish' });
    expect(r.json()).toMatchObject({ status: 'rectifying', measure: 'demolish', rectify_due: '2024-03-19' });
    expect(
      (await call('dianqian', 'POST', `/api/patches/${code}/actions/report_rectified`, {})).json().message,
    ).toMatch(/upload evidence/);
    const big = await call(
      'dianqian',
      'POST',
      `/api/patches/${code}/evidence?filename=big.jpg`,
      Buffer.concat([JPEG, Buffer.alloc(2000)]),
      { 'content-type': 'image/jpeg' },
    );
    expect([400, 413]).toContain(big.statusCode);
    const fake = await call(
      'dianqian',
      'POST',
      `/api/patches/${code}/evidence?filename=x.pdf`,
      Buffer.from('not really a pdf'),
      { 'content-type': 'application/pdf' },
    );
    expect(fake.statusCode).toBe(400);
    expect(fake.json().message).toMatch(/not a JPEG, PNG or PDF/);
    expect(
      (
        await call('dianqian', 'POST', `/api/patches/${code}/evidence?filename=拆除后.jpg`, JPEG, {
          'content-type': 'image/jpeg',
        })
      ).statusCode,
    ).toBe(201);
    const rep1 = await call('dianqian', 'POST', `/api/patches/${code}/actions/report_rectified`, { note: '已拆除' });
    expect(rep1.json().status, rep1.body).toBe('rectified');
    expect((await call('dianqian', 'POST', `/api/patches/${code}/actions/close`, {})).statusCode).toBe(403);
    expect(
      (await call('sup', 'POST', `/api/patches/${code}/actions/send_back`, { reason: '未拆除干净' })).json().status,
    ).toBe('rectifying');
    expect(
      (
        await call(
          'dianqian',
          'POST',
          `/api/patches/${code}/evidence?filename=again.jpg`,
          Buffer.concat([JPEG.subarray(0, 20), Buffer.from([1]), JPEG.subarray(20)]),
          { 'content-type': 'image/jpeg' },
        )
      ).statusCode,
    ).toBe(201);
    expect((await call('dianqian', 'POST', `/api/patches/${code}/actions/report_rectified`, {})).json().status).toBe(
      'rectified',
    );
    const closed = await call('sup', 'POST', `/api/patches/${code}/actions/close`, { note: '销号' });
    expect(closed.json().status).toBe('closed');
    const again = await call('sup', 'POST', `/api/patches/${code}/actions/close`, {});
    expect(again.statusCode).toBe(409);
    expect(again.json().message).toMatch(/is closed; .*none \(final state\)/);
    const history = closed.json().history.map((h: { type: string }) => h.type);
    expect(history).toEqual([
      'detected',
      'dispatch',
      'verify',
      'rectify',
      'evidence_added',
      'report_rectified',
      'send_back',
      'evidence_added',
      'report_rectified',
      'close',
    ]);
    expect(closed.json().history.find((h: { type: string }) => h.type === 'verify')).toMatchObject({
      actor: 'dianqian',
      from_status: 'dispatched',
      to_status: 'illegal',
    });
  });

  it('keeps notes in the history', async () => {
    const r = await call('dianqian', 'POST', `/api/patches/${OWN}/notes`, { text: '已电话联系业主' });
    expect(r.statusCode).toBe(201);
    expect(r.json().history.at(-1)).toMatchObject({
      type: 'note',
      actor: 'dianqian',
      detail: { text: '已电话联系业主' },
    });
    expect((await call('dianqian', 'POST', `/api/patches/${OWN}/notes`, { text: '' })).statusCode).toBe(400);
    expect((await call('adm', 'POST', `/api/patches/${OWN}/notes`, { text: 'x' })).statusCode).toBe(403);
  });

  it('extends deadlines for supervisors only, with a reason', async () => {
    const code = '350206-202403-0003'; // ecological: 3 working days to verify
    today = '2024-03-18';
    expect((await call('ana', 'POST', `/api/patches/${code}/actions/dispatch`, {})).json().verify_due).toBe(
      '2024-03-21',
    );
    expect(
      (await call('ana', 'POST', `/api/patches/${code}/actions/extend`, { working_days: 2, reason: 'x' })).statusCode,
    ).toBe(403);
    expect((await call('sup', 'POST', `/api/patches/${code}/actions/extend`, { working_days: 2 })).statusCode).toBe(
      400,
    );
    const e = await call('sup', 'POST', `/api/patches/${code}/actions/extend`, {
      working_days: 2,
      reason: '台风停工',
      request_key: 'typhoon-stop-1',
    });
    expect(e.json().verify_due).toBe('2024-03-25');
  });

  it('marks overdue and escalates in a daily sweep over a simulated month, each once', async () => {
    const code = '350206-202403-0004'; // farmland, 禾山: 3 working days to verify
    today = '2024-03-28'; // Thursday
    expect((await call('ana', 'POST', `/api/patches/${code}/actions/dispatch`, {})).json().verify_due).toBe(
      '2024-04-02',
    );
    const daily: Record<string, { overdue: number; escalated: number }> = {};
    for (let d = '2024-03-28'; d <= '2024-04-30'; d = addDays(d, 1)) {
      today = d;
      daily[d] = await sweepOverdue(run.db, env);
    }
    const events = await run
      .db('patch_event as e')
      .join('patch as p', 'p.id', 'e.patch_id')
      .where('p.code', code)
      .whereIn('e.type', ['overdue', 'escalated'])
      .orderBy('e.id')
      .select('e.type', 'e.detail');
    // Due Tue 2 Apr; Wed 3 Apr is the first working day after it. Qingming (4–6 Apr) and the
    // make-up Sunday 7 Apr shift the count: 3, 7, 8, 9, 10, 11 → more than 5 late on Thu 11 Apr.
    expect(events.map((e) => [e.type, e.detail.working_days_late])).toEqual([
      ['overdue', 1],
      ['escalated', 6],
    ]);
    expect(daily['2024-04-03'].overdue).toBeGreaterThanOrEqual(1);
    expect(daily['2024-04-11'].escalated).toBeGreaterThanOrEqual(1);
    const board = await call('sup', 'GET', '/api/reports/board?days=3');
    const heshan = board.json().towns.find((t: { town_code: string }) => t.town_code === '350206002');
    expect(heshan.escalated.map((p: { code: string }) => p.code)).toContain(code);
    expect(
      (await call('heshan', 'GET', '/api/patches?overdue=true')).json().patches.map((p: { code: string }) => p.code),
    ).toEqual([code]);
  });

  it('reports towns with zero growth and ranks them first', async () => {
    // 殿前: one patch found illegal and demolished; 禾山: none illegal, one escalated by the daily sweep
    await walkToClosed('350206-202403-0005');
    today = '2024-03-28';
    expect((await call('ana', 'POST', '/api/patches/350206-202403-0004/actions/dispatch', {})).statusCode).toBe(200);
    for (let d = '2024-03-28'; d <= '2024-04-30'; d = addDays(d, 1)) {
      today = d;
      await sweepOverdue(run.db, env);
    }
    const rep = (await call('sup', 'GET', '/api/reports/monthly?month=2024-03')).json();
    const dq = rep.towns.find((t: { town_code: string }) => t.town_code === '350206001');
    const hs = rep.towns.find((t: { town_code: string }) => t.town_code === '350206002');
    expect(dq).toMatchObject({ new_patches: 3, illegal: 1, rectified: 1, zero_growth: false });
    expect(hs).toMatchObject({ new_patches: 2, illegal: 0, zero_growth: true, escalated: 1, rank: 1 });
    expect(rep.city).toMatchObject({ new_patches: 5, illegal: 1, zero_growth_towns: 1, towns: 2 });
  });

  it('reopens a demolished patch that the next batch detects again as rebuilt (复建)', async () => {
    const { code, summary: s } = await rebuiltPatch();
    expect(s.patches.new).toBe(1);
    expect(s.patches.redetected).toBe(4);
    const rebuilt = { code };
    const detail = (await call('ana', 'GET', `/api/patches/${rebuilt.code}`)).json();
    expect(detail.rebuilt_of).toBe('350206-202403-0005');
    expect(detail.history.map((h: { type: string }) => h.type)).toEqual(['rebuilt']);
  });

  it('lets analysts correct a town and merge patches, keeping the history', async () => {
    const rebuilt = { code: (await rebuiltPatch()).code };
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
    const { patch: p, left, right, whole } = await halves(code);
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
    const { left, right } = await halves('350206-202403-0001');
    const split = await call('ana', 'POST', '/api/patches/350206-202403-0001/actions/split', {
      parts: [left, right],
      reason: '两栋建筑',
    });
    expect(split.statusCode, split.body).toBe(200);
    const children = await run
      .db('patch')
      .where('split_from', run.db('patch').where({ code: '350206-202403-0001' }).select('id'))
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
          await run.db.raw(
            `select count(*) n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and query ilike '%from "patch"%for update%'`,
          )
        ).rows[0].n,
      );
    const until = async (n: number) => {
      for (let i = 0; i < 200 && (await lockWaits()) < n; i++) await new Promise((r) => setTimeout(r, 25));
      expect(await lockWaits()).toBeGreaterThanOrEqual(n);
    };
    const holder = await run.db.transaction();
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
    const rows = await run.db('patch').whereIn('code', children).orderBy('code').select('code', 'status');
    expect(rows.map((r) => String(r.status)).sort()).toEqual(['detected', 'merged']);
  });

  it('records every mutating request in an audit table the database will not let anyone change', async () => {
    await walkToClosed('350206-202403-0005');
    // a refused close is recorded too
    expect((await call('dianqian', 'POST', '/api/patches/350206-202403-0005/actions/close', {})).statusCode).toBe(403);
    // a change writes its row in its own transaction; a refusal's row is written just after the response
    const closes = async () =>
      (
        await run.db.raw(
          `select username, method, path, status from audit_event where path like '%actions/close%' order by id`,
        )
      ).rows;
    await expect
      .poll(closes, { timeout: 60_000 })
      .toEqual(
        expect.arrayContaining([
          expect.objectContaining({ username: 'sup', method: 'POST', status: 200 }),
          expect.objectContaining({ username: 'dianqian', status: 403 }),
        ]),
      );
    await expect(run.db.raw('update audit_event set status = 200')).rejects.toThrow(/append-only/);
    await expect(run.db.raw('delete from audit_event')).rejects.toThrow(/append-only/);
    await expect(run.db.raw('update patch_event set actor = ?', ['x'])).rejects.toThrow(/append-only/);
  });

  it('schedules the daily deadline sweep in BullMQ once, and a worker runs it', async () => {
    const { Queue } = await import('bullmq');
    const { redisConnection } = await import('../workers/queues.ts');
    const { scheduleDeadlineSweep, startWorkers } = await import('../workers/worker.pool.ts');
    const { OnnxChangeModel } = await import('../pipeline/io/model.onnx.ts');
    const { createLogger } = await import('../core/log.ts');
    await scheduleDeadlineSweep(run.config);
    await scheduleDeadlineSweep(run.config);
    const connection = redisConnection(run.config);
    const q = new Queue('deadlines', { connection, prefix: run.config.TUBAN_QUEUE_PREFIX });
    const schedulers = await q.getJobSchedulers();
    expect(schedulers).toHaveLength(1);
    expect(schedulers[0]).toMatchObject({ key: 'daily-deadline-sweep', pattern: '0 1 * * *', tz: 'Etc/GMT-8' });
    const lines: string[] = [];
    const model = await OnnxChangeModel.load(run.config.modelDir);
    const pool = startWorkers({
      db: run.db,
      config: run.config,
      model,
      log: createLogger('info', (l) => lines.push(l)),
      workflow: env,
    });
    await q.add('sweep', {});
    for (let i = 0; i < 100 && !lines.some((l) => l.includes('Deadlines:Swept')); i++)
      await new Promise((r) => setTimeout(r, 100));
    expect(lines.find((l) => l.includes('Deadlines:Swept'))).toMatch(/"overdue":\d+,"escalated":\d+/);
    await pool.close();
    await model.close();
    await q.close();
    connection.disconnect();
  });

  it('serves an OpenAPI description of exactly the routes the server has', async () => {
    // the document lists every /api/ route the server registers (only the web app's files are hidden)
    const routes: string[] = [];
    const doc = (await call(null, 'GET', '/api/openapi.json')).json();
    for (const [path, methods] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
      for (const method of Object.keys(methods)) routes.push(`${method.toUpperCase()} ${path}`);
    }
    const expected = [
      'GET /api/health',
      'POST /api/login',
      'GET /api/me',
      'POST /api/logout',
      'GET /api/openapi.json',
      'GET /api/patches',
      'GET /api/meta',
      'GET /api/patches/{code}',
      'POST /api/patches/{code}/notes',
      ...ACTION_NAMES.map((a) => `POST /api/patches/{code}/actions/${a}`),
      'GET /api/map/patches',
      'GET /api/map/config',
      'GET /api/map/tiles/{month}/{z}/{x}/{y}',
      'GET /api/patches/{code}/chips/{which}',
      'POST /api/patches/{code}/evidence',
      'GET /api/evidence/{id}',
      'GET /api/export',
      'GET /api/reports/monthly',
      'GET /api/reports/board',
      'GET /api/reports/trend',
      'GET /api/batches',
      'GET /api/batches/{id}',
      'GET /api/users',
      'POST /api/users',
      'POST /api/users/{username}/tokens',
      'POST /api/users/{username}/revoke',
      'POST /api/users/{username}/disable',
      'POST /api/users/{username}/enable',
      'POST /api/users/{username}/password',
    ];
    expect(routes.sort()).toEqual(expected.sort());
    for (const route of expected) {
      const [method, path] = route.split(' ');
      expect(app.hasRoute({ method: method as 'GET' | 'POST', url: path.replace(/\{(\w+)\}/g, ':$1') }), route).toBe(
        true,
      );
    }
    expect(doc.openapi).toBe('3.1.0');
    // verify's body has one variant per result, each naming the fields it needs
    const verify = doc.paths['/api/patches/{code}/actions/verify'].post.requestBody.content['application/json'].schema;
    const variants = verify.oneOf as {
      properties: Record<string, { const?: string; enum?: string[] }>;
      required: string[];
    }[];
    expect(variants.flatMap((v) => v.properties.result.enum ?? [v.properties.result.const])).toEqual([
      'illegal',
      'legal',
      'false_change',
      'pre_existing',
    ]);
    expect(variants.map((v) => v.required)).toEqual([['result', 'violation'], ['result', 'permit_ref'], ['result']]);
    // every route but the open three needs the bearer token; every query parameter is described
    for (const route of expected) {
      const [method, path] = route.split(' ');
      const op = doc.paths[path][method.toLowerCase()];
      expect(op.summary, route).toBeTruthy();
      expect(op.security ?? null, route).toEqual(
        ['/api/login', '/api/health', '/api/openapi.json'].includes(path) ? null : [{ bearer: [] }],
      );
    }
    expect(doc.paths['/api/patches'].get.parameters.map((p: { name: string }) => p.name)).toEqual(
      expect.arrayContaining(['month', 'town', 'status', 'bbox', 'limit', 'offset']),
    );
    expect(
      doc.paths['/api/export'].get.parameters.find((p: { name: string }) => p.name === 'format').schema.enum,
    ).toContain('gpkg');
  });
});
