import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildServer } from '../server/app.ts';
import { apiCaller } from './helpers/api.ts';
import { workflowApi } from './helpers/workflow-api.ts';

/** Degrees as EXIF's rational degrees, minutes, seconds. */
const dms = (v: number) => {
  const d = Math.floor(Math.abs(v));
  const m = Math.floor((Math.abs(v) - d) * 60);
  const s = Math.round(((Math.abs(v) - d) * 60 - m) * 60 * 10000);
  return `${d}/1 ${m}/1 ${s}/10000`;
};
/** The camera's clock, in the city's time (UTC+8) as cameras write it, without an offset. */
const cameraTime = (t: Date) =>
  new Date(t.getTime() + 8 * 3600_000).toISOString().slice(0, 19).replace('T', ' ').replace(/-/g, ':');

/** A bright 800 × 600 site photo with the EXIF a phone writes: when, and (optionally) where. */
function photo(opts: { at?: Date; lon?: number; lat?: number }): Promise<Buffer> {
  const exif: Record<string, Record<string, string>> = { IFD0: { Make: 'tuban-test' } };
  if (opts.at) exif.IFD2 = { DateTimeOriginal: cameraTime(opts.at) };
  if (opts.lon !== undefined && opts.lat !== undefined)
    exif.IFD3 = {
      GPSLatitudeRef: 'N',
      GPSLatitude: dms(opts.lat),
      GPSLongitudeRef: 'E',
      GPSLongitude: dms(opts.lon),
    };
  return sharp({ create: { width: 800, height: 600, channels: 3, background: '#e8e4da' } })
    .withExif(exif)
    .jpeg()
    .toBuffer();
}

/**
 * Photos that prove themselves (issue 31, part 4), on real PostGIS through the HTTP API: each photo
 * marked by stage and author, flagged from its EXIF and the server's clock, a minimum for 违法 and
 * 整改完成, a stamped copy for exports with the original kept as it came.
 */
describe('site photos as evidence', () => {
  const h = workflowApi();
  const CODE = '350206-202403-0002';

  /** The scene's server takes 1 KB uploads; these photos are real JPEGs of a few KB. */
  async function server(): Promise<{ app: FastifyInstance; call: ReturnType<typeof apiCaller> }> {
    const app = await buildServer({ db: h.run.db, config: h.run.config, env: h.env, evidenceMaxBytes: 5 << 20 });
    return { app, call: apiCaller(() => app, h.token) };
  }
  const upload = (call: ReturnType<typeof apiCaller>, who: string, code: string, bytes: Buffer, name: string) =>
    call(who, 'POST', `/api/patches/${code}/evidence?filename=${name}`, bytes, { 'content-type': 'image/jpeg' });

  it('flags a photo taken before dispatch, after its own upload, without time or place, or far away', async () => {
    const { app, call } = await server();
    try {
      const disp = await call('ana', 'POST', `/api/patches/${CODE}/actions/dispatch`, {});
      expect(disp.statusCode).toBe(200);
      const { lon, lat } = (await call('dianqian', 'GET', `/api/patches/${CODE}`)).json();
      const now = Date.now();
      const cases: [string, Buffer, string[]][] = [
        ['good.jpg', await photo({ at: new Date(now), lon, lat }), []],
        ['old.jpg', await photo({ at: new Date(now - 2 * 86400_000), lon, lat }), ['before_dispatch']],
        ['future.jpg', await photo({ at: new Date(now + 2 * 86400_000), lon, lat }), ['after_upload']],
        ['bare.jpg', await photo({}), ['no_time', 'no_position']],
        ['far.jpg', await photo({ at: new Date(now), lon: lon + 0.01, lat }), ['far']],
      ];
      for (const [name, bytes, flags] of cases) {
        const r = await upload(call, 'dianqian', CODE, bytes, name);
        expect(r.statusCode, r.body).toBe(201);
        expect(r.json(), name).toMatchObject({ stage: 'verify', flags, stamped: true });
      }
      const detail = (await call('sup', 'GET', `/api/patches/${CODE}`)).json();
      const by = Object.fromEntries(detail.evidence.map((e: { filename: string }) => [e.filename, e]));
      expect(by['good.jpg']).toMatchObject({ stage: 'verify', flags: [], author: '殿前街道办' });
      expect(by['good.jpg'].distance_m).toBeLessThan(5); // taken at the patch's centre
      expect(by['far.jpg'].distance_m).toBeGreaterThan(900); // 0.01° of longitude at 24.5° N is about 1 km
      expect(by['far.jpg'].flags).toEqual(['far']);
      expect(by['old.jpg'].flags).toEqual(['before_dispatch']);
    } finally {
      await app.close();
    }
  }, 120_000);

  it('asks photos for a verdict of 违法 and for 整改完成, and marks each by the stage it documents', async () => {
    const { app, call } = await server();
    try {
      await call('ana', 'POST', `/api/patches/${CODE}/actions/dispatch`, {});
      // dispatched yesterday: the photos below are all taken since
      await h.run
        .db('patch')
        .where({ code: CODE })
        .update({ dispatched_at: h.run.db.raw("now() - interval '1 day'") });
      const verdict = { result: 'illegal', violation: 'construction' };
      // a document is not a photo of the site
      const pdf = await call(
        'dianqian',
        'POST',
        `/api/patches/${CODE}/evidence?filename=order.pdf`,
        Buffer.from('%PDF-1.4\n%%EOF\n'),
        {
          'content-type': 'application/pdf',
        },
      );
      expect(pdf.json()).toMatchObject({ stage: 'verify', flags: [], stamped: false });
      const bare = await call('dianqian', 'POST', `/api/patches/${CODE}/actions/verify`, verdict, {
        'accept-language': 'zh-CN',
      });
      expect(bare.statusCode).toBe(400);
      expect(bare.json().message).toBe('认定违法须有 1 张现场核查照片，现有 0 张：请先在现场用「拍照上传」拍摄');
      const { lon, lat } = (await call('dianqian', 'GET', `/api/patches/${CODE}`)).json();
      const site = await upload(call, 'dianqian', CODE, await photo({ at: new Date(), lon, lat }), 'site.jpg');
      expect(site.json().stage).toBe('verify');
      expect((await call('dianqian', 'POST', `/api/patches/${CODE}/actions/verify`, verdict)).statusCode).toBe(200);
      expect(
        (await call('dianqian', 'POST', `/api/patches/${CODE}/actions/rectify`, { measure: 'demolish' })).statusCode,
      ).toBe(200);
      // the verification photo does not prove the demolition; an old picture uploaded now is flagged
      const report = () => call('dianqian', 'POST', `/api/patches/${CODE}/actions/report_rectified`, {});
      expect((await report()).json().message).toMatch(/1 photo\(s\) of the result taken since the order are needed; 0/);
      const old = await upload(
        call,
        'dianqian',
        CODE,
        await photo({ at: new Date(Date.now() - 3600_000), lon, lat }),
        'before-order.jpg',
      );
      expect(old.json()).toMatchObject({ stage: 'rectify', flags: ['before_rectify'] });
      expect((await report()).statusCode).toBe(200);
      const detail = (await call('sup', 'GET', `/api/patches/${CODE}`)).json();
      expect(detail.evidence.map((e: { filename: string; stage: string }) => `${e.filename}:${e.stage}`)).toEqual([
        'order.pdf:verify',
        'site.jpg:verify',
        'before-order.jpg:rectify',
      ]);
    } finally {
      await app.close();
    }
  }, 120_000);

  it('stores a photo sent again with its request key once (an outbox resending after a lost answer)', async () => {
    const { app, call } = await server();
    try {
      await call('ana', 'POST', `/api/patches/${CODE}/actions/dispatch`, {});
      const bytes = await photo({ at: new Date() });
      const send = (key: string) =>
        call('dianqian', 'POST', `/api/patches/${CODE}/evidence?filename=a.jpg&request_key=${key}`, bytes, {
          'content-type': 'image/jpeg',
        });
      expect((await send('bad key!')).statusCode).toBe(400);
      const first = await send('upload-key-0001');
      const again = await send('upload-key-0001');
      expect(first.statusCode).toBe(201);
      expect(again.statusCode).toBe(201);
      expect(again.json()).toMatchObject({ id: first.json().id, sha256: first.json().sha256, repeated: true });
      const other = await send('upload-key-0002'); // the same picture taken again on purpose: a file of its own
      expect(other.json().id).not.toBe(first.json().id);
      const rows = await h.run.db('evidence').join('patch', 'patch.id', 'evidence.patch_id').where('patch.code', CODE);
      expect(rows).toHaveLength(2);
      const events = await h.run
        .db('patch_event')
        .join('patch', 'patch.id', 'patch_event.patch_id')
        .where({ 'patch.code': CODE, 'patch_event.type': 'evidence_added' });
      expect(events).toHaveLength(2);
    } finally {
      await app.close();
    }
  }, 120_000);

  it('keeps the original as it came and shows a stamped copy in sheets and town packages', async () => {
    const { app, call } = await server();
    try {
      await call('ana', 'POST', `/api/patches/${CODE}/actions/dispatch`, {});
      const { lon, lat } = (await call('dianqian', 'GET', `/api/patches/${CODE}`)).json();
      const bytes = await photo({ at: new Date(Date.now() - 2 * 86400_000), lon, lat });
      const up = (await upload(call, 'dianqian', CODE, bytes, 'site.jpg')).json();
      expect(up.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
      const original = await call('dianqian', 'GET', `/api/evidence/${up.id}`);
      expect(original.rawPayload.equals(bytes)).toBe(true);
      const stamped = await call('dianqian', 'GET', `/api/evidence/${up.id}/stamped.jpg`);
      expect(stamped.statusCode).toBe(200);
      expect(stamped.headers['content-type']).toBe('image/jpeg');
      // the same photo with a dark band of text along its bottom
      const img = sharp(stamped.rawPayload);
      expect(await img.metadata()).toMatchObject({ width: 800, height: 600 });
      const stats = async (top: number) => {
        const px = await sharp(stamped.rawPayload)
          .extract({ left: 0, top, width: 800, height: 40 })
          .greyscale()
          .raw()
          .toBuffer();
        return { mean: px.reduce((a, b) => a + b, 0) / px.length, max: Math.max(...px) };
      };
      expect((await stats(0)).mean).toBeGreaterThan(200);
      const band = await stats(560);
      expect(band.mean).toBeLessThan(150);
      expect(band.max).toBeGreaterThan(200); // the text, drawn light on the band
      // a PDF for a photo: no stamped copy, said in words
      const pdf = await call(
        'dianqian',
        'POST',
        `/api/patches/${CODE}/evidence?filename=a.pdf`,
        Buffer.from('%PDF-1.4\n%%EOF\n'),
        {
          'content-type': 'application/pdf',
        },
      );
      const none = await call('dianqian', 'GET', `/api/evidence/${pdf.json().id}/stamped.jpg`);
      expect(none.statusCode).toBe(404);

      // the verification sheet gets a second page with the stamped photo and its flags
      const sheets = await call('ana', 'GET', '/api/export?month=2024-03&format=pdf&town=350206001');
      expect(sheets.statusCode).toBe(200);
      const dir = mkdtempSync(join(tmpdir(), 'tuban-photos-'));
      writeFileSync(join(dir, 's.pdf'), sheets.rawPayload);
      const text = execFileSync('pdftotext', [join(dir, 's.pdf'), '-'], { encoding: 'utf8' });
      expect(text).toContain('现场照片');
      expect(text).toContain('核查照片 1（拍摄早于下发）');
      const pages = Number(
        /Pages:\s+(\d+)/.exec(execFileSync('pdfinfo', [join(dir, 's.pdf')], { encoding: 'utf8' }))![1],
      );
      expect(pages).toBe(4); // three sheets of 殿前, one photo page
      // the town package holds the stamped copy, byte for byte
      const zip = await call('dianqian', 'GET', '/api/export?month=2024-03&format=zip');
      writeFileSync(join(dir, 'p.zip'), zip.rawPayload);
      const names = execFileSync(
        '/usr/bin/python3',
        ['-c', 'import sys, zipfile; print("\\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))', join(dir, 'p.zip')],
        { encoding: 'utf8' },
      )
        .trim()
        .split('\n');
      const inZip = names.filter((n) => n.includes('/照片/'));
      expect(inZip).toEqual([`350206001_殿前街道/照片/${CODE}_核查_1.jpg`]);
      const copy = execFileSync('/usr/bin/python3', [
        '-c',
        'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))',
        join(dir, 'p.zip'),
        inZip[0],
      ]);
      expect(copy.equals(stamped.rawPayload)).toBe(true);
    } finally {
      await app.close();
    }
  }, 180_000);
});
