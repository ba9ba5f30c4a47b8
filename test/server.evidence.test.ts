import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { JPEG } from './helpers/hostile.ts';
import { OWN, workflowApi } from './helpers/workflow-api.ts';

/** Evidence (thumbnails, EXIF, refusals), notes and filtered exports, through the HTTP API on real PostGIS. */
describe('workflow HTTP API: evidence, notes and exports', () => {
  const h = workflowApi();
  const { call } = h;

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
      names.push(decodeURIComponent(/filename\*=UTF-8''(.+)$/.exec(String(r.headers['content-disposition']))![1]));
      return r.body;
    };
    const names: string[] = [];
    const all = await csv();
    expect(all).toContain('350206-202403-0005');
    const open = await csv('open');
    expect(open).not.toContain('350206-202403-0005');
    expect(open).toContain('350206-202403-0002');
    expect(open).toContain('350206-202403-0003');
    expect(open).not.toContain('350206-202403-0001'); // another town's, as ever
    expect(await csv('closed')).toContain('350206-202403-0005');
    // the file says which patches it holds
    expect(names).toEqual([
      '350206001_殿前街道_2024-03.csv',
      '350206001_殿前街道_2024-03_open.csv',
      '350206001_殿前街道_2024-03_closed.csv',
    ]);
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
});
