import { describe, expect, it } from 'vitest';
import { sweepOverdue } from '../store/overdue.ts';
import { addDays } from '../workflow/calendar.ts';
import { JPEG } from './helpers/hostile.ts';
import { workflowApi } from './helpers/workflow-api.ts';

/** The lifecycle, deadlines and reports, through the HTTP API on real PostGIS. */
describe('workflow HTTP API: the lifecycle, deadlines and reports', () => {
  const h = workflowApi();
  const { call, env } = h;

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

    h.today = '2024-02-07'; // Wednesday before Spring Festival
    const d = await call('ana', 'POST', `/api/patches/${code}/actions/dispatch`, {});
    expect(d.statusCode).toBe(200);
    expect(d.json()).toMatchObject({ status: 'dispatched', verify_due: '2024-02-20' }); // 5 working days: 8, 9, 18 (make-up Sunday), 19, 20
    expect(
      (await call('dianqian', 'POST', `/api/patches/${code}/actions/verify`, { result: 'legal' })).json().message,
    ).toMatch(/legal result needs permit_ref/);
    expect(
      (await call('dianqian', 'POST', `/api/patches/${code}/actions/verify`, { result: 'maybe' })).statusCode,
    ).toBe(400);
    h.today = '2024-02-20';
    // a verdict of 违法 needs a photo of the site (TUBAN_EVIDENCE_MIN_VERIFY_PHOTOS, 1 by default)
    const bare = await call('dianqian', 'POST', `/api/patches/${code}/actions/verify`, {
      result: 'illegal',
      violation: 'construction',
    });
    expect(bare.statusCode).toBe(400);
    expect(bare.json().message).toMatch(/needs 1 site photo\(s\) of this patch; 0 uploaded/);
    await h.photo('dianqian', code, 'site.jpg');
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
    ).toMatch(/1 photo\(s\) of the result taken since the order are needed; 0 uploaded/); // the site photo was of the verification
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
    // a finished case takes no more evidence
    const late = await call('dianqian', 'POST', `/api/patches/${code}/evidence?filename=late.jpg`, JPEG, {
      'content-type': 'image/jpeg',
    });
    expect(late.statusCode, late.body).toBe(409);
    expect(late.json().message).toMatch(/is closed: a finished case takes no more evidence/);
    const history = closed.json().history.map((h: { type: string }) => h.type);
    expect(history).toEqual([
      'detected',
      'dispatch',
      'evidence_added',
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

  it('extends deadlines for supervisors only, with a reason', async () => {
    const code = '350206-202403-0003'; // ecological: 3 working days to verify
    h.today = '2024-03-18';
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
    h.today = '2024-03-28'; // Thursday
    expect((await call('ana', 'POST', `/api/patches/${code}/actions/dispatch`, {})).json().verify_due).toBe(
      '2024-04-02',
    );
    const daily: Record<string, { overdue: number; escalated: number }> = {};
    for (let d = '2024-03-28'; d <= '2024-04-30'; d = addDays(d, 1)) {
      h.today = d;
      daily[d] = await sweepOverdue(h.run.db, env);
    }
    const events = await h.run
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

  it('reopens a demolished patch that the next batch detects again as rebuilt (复建)', async () => {
    const { code, summary: s } = await h.rebuiltPatch();
    expect(s.patches.new).toBe(1);
    expect(s.patches.redetected).toBe(4);
    const rebuilt = { code };
    const detail = (await call('ana', 'GET', `/api/patches/${rebuilt.code}`)).json();
    expect(detail.rebuilt_of).toBe('350206-202403-0005');
    expect(detail.history.map((h: { type: string }) => h.type)).toEqual(['rebuilt']);
  });

  it('schedules the daily deadline sweep in BullMQ once, and a worker runs it', async () => {
    const { Queue } = await import('bullmq');
    const { redisConnection } = await import('../workers/queues.ts');
    const { scheduleDeadlineSweep, startWorkers } = await import('../workers/worker.pool.ts');
    const { OnnxChangeModel } = await import('../pipeline/io/model.onnx.ts');
    const { createLogger } = await import('../core/log.ts');
    await scheduleDeadlineSweep(h.run.config);
    await scheduleDeadlineSweep(h.run.config);
    const connection = redisConnection(h.run.config);
    const q = new Queue('deadlines', { connection, prefix: h.run.config.TUBAN_QUEUE_PREFIX });
    const schedulers = await q.getJobSchedulers();
    expect(schedulers).toHaveLength(1);
    expect(schedulers[0]).toMatchObject({ key: 'daily-deadline-sweep', pattern: '0 1 * * *', tz: 'Etc/GMT-8' });
    const lines: string[] = [];
    const model = await OnnxChangeModel.load(h.run.config.modelDir);
    const pool = startWorkers({
      db: h.run.db,
      config: h.run.config,
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
});
