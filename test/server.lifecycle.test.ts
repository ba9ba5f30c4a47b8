import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { sweepOverdue } from '../store/overdue.ts';
import { addDays } from '../workflow/calendar.ts';
import { JPEG } from './helpers/hostile.ts';
import { OWN, workflowApi } from './helpers/workflow-api.ts';

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

  it('shows photos as upright thumbnails; a PDF or a photo that does not decode has none', async () => {
    const photo = await sharp({ create: { width: 600, height: 400, channels: 3, background: '#888' } })
      .png({ palette: true, colours: 2 })
      .toBuffer();
    const upload = async (name: string, bytes: Buffer) => {
      const r = await call('dianqian', 'POST', `/api/patches/${OWN}/evidence?filename=${name}`, bytes, {
        'content-type': 'application/octet-stream',
      });
      expect(r.statusCode, r.body).toBe(201);
      return r.json().id as number;
    };
    const thumb = await call('dianqian', 'GET', `/api/evidence/${await upload('site.png', photo)}/thumb.jpg`);
    expect(thumb.statusCode).toBe(200);
    expect(thumb.headers['content-type']).toBe('image/jpeg');
    expect(await sharp(thumb.rawPayload).metadata()).toMatchObject({ format: 'jpeg', width: 240, height: 160 });
    const pdf = Buffer.from('%PDF-1.4\n%%EOF\n');
    expect((await call('dianqian', 'GET', `/api/evidence/${await upload('scan.pdf', pdf)}/thumb.jpg`)).statusCode).toBe(
      204,
    );
    expect(
      (await call('dianqian', 'GET', `/api/evidence/${await upload('tiny.jpg', JPEG)}/thumb.jpg`)).statusCode,
    ).toBe(204);
    // a photo's EXIF time and GPS position are kept with it: the proof of the site visit
    const geotagged = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#6a6' } })
      .withExif({
        IFD2: { DateTimeOriginal: '2024:03:20 10:31:05', OffsetTimeOriginal: '+08:00' },
        IFD3: {
          GPSLatitudeRef: 'N',
          GPSLatitude: '24/1 30/1 5616/100',
          GPSLongitudeRef: 'E',
          GPSLongitude: '118/1 5/1 5520/100',
        },
      })
      .jpeg()
      .toBuffer();
    const up = await call('dianqian', 'POST', `/api/patches/${OWN}/evidence?filename=site.jpg`, geotagged, {
      'content-type': 'image/jpeg',
    });
    expect(up.statusCode, up.body).toBe(201);
    expect(up.json()).toMatchObject({ taken_at: '2024-03-20T10:31:05+08:00' });
    expect(up.json().lat).toBeCloseTo(24.5156, 6);
    expect(up.json().lon).toBeCloseTo(118.098667, 6);
    const listed = (await call('dianqian', 'GET', `/api/patches/${OWN}`)).json().evidence;
    expect(listed.find((e: { filename: string }) => e.filename === 'site.jpg')).toMatchObject({
      taken_at: '2024-03-20T10:31:05+08:00',
    });
    expect(listed.find((e: { filename: string }) => e.filename === 'site.png')).toMatchObject({
      taken_at: null,
      lon: null,
    });
    // an iPhone's HEIC photo is refused with what to do instead
    const heic = Buffer.concat([Buffer.from([0, 0, 0, 24]), Buffer.from('ftypheic'), Buffer.alloc(64)]);
    const refused = await call('dianqian', 'POST', `/api/patches/${OWN}/evidence?filename=IMG_0001.HEIC`, heic, {
      'content-type': 'application/octet-stream',
    });
    expect(refused.statusCode).toBe(400);
    expect(refused.json().message).toMatch(/IMG_0001\.HEIC: an HEIC photo.*JPEG/);
    // another town's evidence has no thumbnail either: it is not found
    const id = await upload('again.png', photo);
    expect((await call('heshan', 'GET', `/api/evidence/${id}/thumb.jpg`)).statusCode).toBe(404);
  });

  it('exports only the unfinished patches when asked (status=open), and names a bad state', async () => {
    await h.walkToClosed('350206-202403-0005');
    const csv = async (status?: string) => {
      const r = await call(
        'dianqian',
        'GET',
        `/api/export?month=2024-03&format=csv${status === undefined ? '' : `&status=${status}`}`,
      );
      expect(r.statusCode, r.body).toBe(200);
      return r.body;
    };
    const all = await csv();
    expect(all).toContain('350206-202403-0005');
    const open = await csv('open');
    expect(open).not.toContain('350206-202403-0005');
    expect(open).toContain('350206-202403-0002');
    expect(open).toContain('350206-202403-0003');
    expect(open).not.toContain('350206-202403-0001'); // another town's, as ever
    expect(await csv('closed')).toContain('350206-202403-0005');
    const bad = await call('dianqian', 'GET', '/api/export?month=2024-03&format=csv&status=open,finished');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toMatch(/"finished" is not a patch state/);
  });

  it('keeps notes in the history', async () => {
    const r = await call('dianqian', 'POST', `/api/patches/${OWN}/notes`, { text: '已电话联系业主' });
    expect(r.statusCode).toBe(201);
    expect(r.json().history.at(-1)).toMatchObject({
      type: 'note',
      actor: 'dianqian',
      detail: { text: '已电话联系业主' },
    });
    // times are the city's wall clock (UTC+8 by default), with the offset written out
    const at = r.json().history.at(-1).at as string;
    expect(at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+08:00$/);
    const stored = await h.run.db('patch_event').where({ type: 'note' }).orderBy('id', 'desc').first('at');
    expect(new Date(at).getTime()).toBe(Math.floor(new Date(stored.at).getTime() / 1000) * 1000);
    expect((await call('dianqian', 'POST', `/api/patches/${OWN}/notes`, { text: '' })).statusCode).toBe(400);
    expect((await call('adm', 'POST', `/api/patches/${OWN}/notes`, { text: 'x' })).statusCode).toBe(403);
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
    }
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
    expect((await todo('sup')).patches).toEqual([]);
    // the supervisor's board counts the same working days
    const board = (await call('sup', 'GET', '/api/reports/board?days=3')).json();
    const items = board.towns.flatMap((t: { overdue: unknown[]; due_soon: unknown[]; escalated: unknown[] }) => [
      ...t.overdue,
      ...t.due_soon,
      ...t.escalated,
    ]);
    expect(items).toContainEqual(expect.objectContaining({ code: OWN, days_left: -3 }));
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
