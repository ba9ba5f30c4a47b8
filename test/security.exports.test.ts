import sharp from 'sharp';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { buildServer } from '../server/app.ts';
import { safeName } from '../export/names.ts';
import { createLogger } from '../core/log.ts';
import { exportPatches } from '../store/export.ts';
import { registerImagery } from '../store/imagery.ts';
import { encodeGeoTiff } from '../pipeline/io/geotiff.write.ts';
import { EPSG_4548 } from '../core/crs.ts';
import { filesUnder, hostileServer, JPEG, OWN } from './helpers/hostile.ts';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * The security review's findings (issue 17) on exports, files, imagery and evidence, each replayed as an attack against
 * `tuban serve` on real PostGIS: these failed before the fixes and guard them now.
 */
describe('security: exports, files, imagery and evidence', () => {
  const h = hostileServer();
  const { call, env, token } = h;
  const fixturesDir = inject('fixturesDir');

  it('finding 1 (High): a town in the export query never reaches a path; exports leave no file behind', async () => {
    // another town's evidence file is the target, as in the review
    const up = await call('heshan', 'POST', `/api/patches/350206-202403-0001/evidence?filename=site.jpg`, JPEG, {
      'content-type': 'image/jpeg',
    });
    expect(up.statusCode).toBe(201);
    // the file this upload stored (other scenarios may have stored more)
    const stored = (await h.run.db('evidence').where({ id: up.json().id }).first('stored_as')).stored_as as string;
    const evidence = filesUnder(join(h.run.config.dataDir, 'evidence')).filter((f) => f === stored);
    expect(evidence).toHaveLength(1);
    const before = readFileSync(evidence[0]);
    const target = evidence[0].replace(/\.jpg$/, '');
    const escape = `tuban-escape-${process.pid}`;
    const escapes = [
      `../../../../../../../../tmp/${escape}`,
      '../../../../x',
      `../../../../../../../..${target}`,
      `../evidence/${target.split('/').slice(-2).join('/')}`,
      'a/b',
      '..',
      'x\r\nSet-Cookie: a=b',
      'x\u0000y',
    ];
    for (const town of escapes) {
      const r = await call('dianqian', 'GET', `/api/export?month=2024-03&format=csv&town=${encodeURIComponent(town)}`);
      expect(r.statusCode, town).toBe(400);
      expect(r.json().message, town).toMatch(/town/);
    }
    expect(sha256(readFileSync(evidence[0]))).toBe(sha256(before));
    expect(existsSync(`/tmp/${escape}.csv`)).toBe(false);

    // a good export streams, is named from a sanitised town, and leaves nothing on disk
    const ok = await call('dianqian', 'GET', '/api/export?month=2024-03&format=csv&town=350206001');
    expect(ok.statusCode, ok.body).toBe(200);
    expect(ok.headers['content-disposition']).toMatch(/filename="patches-2024-03-350206001\.csv"/);
    expect(ok.body).toContain('350206-202403-0002');
    const shp = await call('dianqian', 'GET', '/api/export?month=2024-03&format=shp');
    expect(shp.statusCode, shp.body).toBe(200);
    expect(shp.rawPayload.subarray(0, 2).toString()).toBe('PK');
    // the folder goes when the response stream closes, which may be just after inject resolves
    await expect.poll(() => filesUnder(join(h.run.config.dataDir, 'tmp')), { timeout: 60_000 }).toEqual([]);
  });

  it('finding 1: names from the town layer are made safe before they name a zip folder or a file', () => {
    expect(safeName('../../etc/passwd')).toBe('etc_passwd');
    expect(safeName('350206001_殿前街道')).toBe('350206001_殿前街道');
    expect(safeName('..')).toBe('export');
    expect(safeName('a\\b\r\nc')).toBe('a_b_c');
    expect(safeName('.hidden')).toBe('hidden');
  });

  /** A second server on the same database, listening on loopback, with its own export limits and log. */
  async function listening(exportLimits: { running: number; waiting: number }, lines: Record<string, unknown>[] = []) {
    const srv = await buildServer({
      db: h.run.db,
      config: {
        ...h.run.config,
        TUBAN_EXPORT_CONCURRENCY: exportLimits.running,
        TUBAN_EXPORT_QUEUE: exportLimits.waiting,
      },
      env,
      log: createLogger('info', (l) => lines.push(JSON.parse(l))),
    });
    const base = await srv.listen({ host: '127.0.0.1', port: 0 });
    return {
      srv,
      base,
      pdf: (signal?: AbortSignal) =>
        fetch(`${base}/api/export?month=2024-03&format=pdf`, {
          headers: { authorization: `Bearer ${token.ana}` },
          signal,
        }),
    };
  }

  it('finding 4 (Medium): 40 concurrent PDF exports leave /api/health answering within 1 s; the line is bounded', async () => {
    const { srv, base, pdf } = await listening({ running: 2, waiting: 8 });
    try {
      const health: number[] = [];
      const rss0 = process.memoryUsage().rss;
      let rssPeak = rss0;
      let loading = true;
      const poll = (async () => {
        while (loading) {
          const t0 = performance.now();
          const h = await fetch(`${base}/api/health`, { signal: AbortSignal.timeout(30_000) });
          expect(h.status).toBe(200);
          await h.json();
          health.push(performance.now() - t0);
          rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
      const results = await Promise.all(
        Array.from({ length: 40 }, async () => {
          const r = await pdf();
          return {
            status: r.status,
            retryAfter: r.headers.get('retry-after'),
            body: Buffer.from(await r.arrayBuffer()),
          };
        }),
      );
      loading = false;
      await poll;
      const made = results.filter((r) => r.status === 200);
      const refused = results.filter((r) => r.status === 503);
      expect(made.length + refused.length).toBe(40);
      // two run, eight wait: at least those ten are made; the rest are told when to come back
      expect(made.length).toBeGreaterThanOrEqual(10);
      expect(refused.length).toBeGreaterThan(0);
      for (const r of made) expect(r.body.subarray(0, 5).toString()).toBe('%PDF-');
      for (const r of refused) {
        expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(5);
        expect(JSON.parse(r.body.toString()).message).toMatch(/busy .* try again in \d+ s/);
      }
      console.log(
        `40 PDF exports: ${made.length} made, ${refused.length} refused; /api/health ${health.length} polls, slowest ${Math.max(...health).toFixed(0)} ms; RSS +${((rssPeak - rss0) / 2 ** 20).toFixed(0)} MB`,
      );
      expect(health.length).toBeGreaterThan(2);
      expect(Math.max(...health)).toBeLessThan(1000);
    } finally {
      await srv.close();
    }
    await expect.poll(() => filesUnder(join(h.run.config.dataDir, 'tmp')), { timeout: 60_000 }).toEqual([]);
  });

  it('finding 4: a client that goes away leaves the line, and its export is stopped', async () => {
    const lines: Record<string, unknown>[] = [];
    const { srv, base, pdf } = await listening({ running: 1, waiting: 4 }, lines);
    const exports = async () =>
      (await (await fetch(`${base}/api/health`)).json()).exports as { running: number; waiting: number };
    try {
      const first = pdf();
      await expect.poll(exports, { timeout: 60_000, interval: 5 }).toMatchObject({ running: 1 });
      const gone = [1, 2, 3].map(() => {
        const ac = new AbortController();
        return { ac, res: pdf(ac.signal).catch((err: Error) => err) };
      });
      await expect.poll(exports, { timeout: 60_000, interval: 5 }).toMatchObject({ waiting: 3 });
      for (const g of gone) g.ac.abort();
      for (const g of gone) expect(await g.res).toBeInstanceOf(Error);
      await expect.poll(exports, { timeout: 60_000 }).toMatchObject({ waiting: 0 });
      const made = await first;
      expect(made.status).toBe(200);
      expect(
        Buffer.from(await made.arrayBuffer())
          .subarray(0, 5)
          .toString(),
      ).toBe('%PDF-');
      await expect
        .poll(() => lines.filter((l) => l.event === 'Export:Stopped' && /went away/.test(String(l.reason))).length, {
          timeout: 30_000,
        })
        .toBe(3);
      await expect.poll(exports, { timeout: 60_000 }).toEqual({ running: 0, waiting: 0 });
    } finally {
      await srv.close();
    }
    // an export already stopped writes nothing
    const ac = new AbortController();
    ac.abort(new Error('stopped by the test'));
    const out = join(h.run.config.dataDir, 'tmp-stopped.pdf');
    await expect(
      exportPatches(h.run.db, env, {
        month: '2024-03',
        format: 'pdf',
        outPath: out,
        storageSrid: h.run.config.TUBAN_STORAGE_SRID,
        signal: ac.signal,
      }),
    ).rejects.toThrow(/stopped by the test/);
    expect(existsSync(out)).toBe(false);
  });

  it('info finding: town users get map imagery only inside their town and a margin; batches show no server paths', async () => {
    const res = 0.5;
    const z = 5; // 0.5 m in the tile grid
    const tileAt = (x: number, y: number) =>
      `/api/map/tiles/2024-03/${z}/${Math.floor(x / (256 * res))}/${Math.floor((10_000_000 - y) / (256 * res))}.png`;
    // random points on March's imagery (1 km across; 禾山 is its eastern 474 m), with their distance from 殿前 (350206001)
    const { rows } = await h.run.db.raw(`
      select ST_X(p.geom) x, ST_Y(p.geom) y, ST_Distance(p.geom, t.geom) d
      from (select (ST_Dump(ST_GeneratePoints(ST_Union(footprint), 400, 17))).geom from imagery where month = '2024-03') p,
           (select ST_Union(geom) geom from reference_feature where kind = 'town' and code = '350206001') t`);
    const alpha = async (png: Buffer) => {
      const { data, info } = await sharp(png).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
      let shown = 0;
      for (let i = info.channels - 1; i < data.length; i += info.channels) if (data[i] > 0) shown++;
      return shown / (info.width * info.height);
    };
    // a 128 m map tile around a point 420 m away lies wholly beyond the 200 m margin
    const far = rows.find((r: { d: number }) => r.d > 420);
    const inside = rows.find((r: { d: number }) => r.d === 0);
    const edge = rows.find((r: { d: number }) => r.d > 180 && r.d < 220);
    expect(far && inside && edge).toBeTruthy();
    const farTile = tileAt(far.x, far.y);
    expect((await call('ana', 'GET', farTile)).statusCode).toBe(200);
    expect((await call('dianqian', 'GET', farTile)).statusCode).toBe(204);
    const own = await call('dianqian', 'GET', tileAt(inside.x, inside.y));
    expect(own.statusCode).toBe(200);
    expect(own.rawPayload.equals((await call('ana', 'GET', tileAt(inside.x, inside.y))).rawPayload)).toBe(true);
    const edgeTile = tileAt(edge.x, edge.y);
    const [mine, all] = [await call('dianqian', 'GET', edgeTile), await call('ana', 'GET', edgeTile)];
    expect(mine.statusCode).toBe(200);
    const [shownMine, shownAll] = [await alpha(mine.rawPayload), await alpha(all.rawPayload)];
    expect(shownMine).toBeGreaterThan(0);
    expect(shownMine).toBeLessThan(shownAll);

    // a batch's scenes by file name over HTTP, never the server's folders
    const batches = (await call('ana', 'GET', '/api/batches')).json();
    const detail = (await call('ana', 'GET', `/api/batches/${batches[0].id}`)).json();
    expect(detail.tiles.length).toBeGreaterThan(0);
    for (const t of detail.tiles) expect(t.path).not.toContain('/');
    expect(JSON.stringify(detail)).not.toContain(fixturesDir);
  });

  it('low findings: registration refuses sizes the file cannot back and sizes over the ceiling', async () => {
    const small = Buffer.from(
      encodeGeoTiff({
        widthPx: 16,
        heightPx: 16,
        samples: new Uint8Array(16 * 16 * 3).fill(90),
        bands: 3,
        crs: EPSG_4548,
        geoTransform: [611200, 0.5, 0, 2713600, 0, -0.5],
      }),
    );
    /** The first IFD's entry for `tag` (geotiff.js writes big-endian; GDAL little-endian): where its type and value sit. */
    const le = (b: Buffer) => b.toString('latin1', 0, 2) === 'II';
    const u16 = (b: Buffer, o: number) => (le(b) ? b.readUInt16LE(o) : b.readUInt16BE(o));
    const entry = (b: Buffer, tag: number) => {
      const ifd = le(b) ? b.readUInt32LE(4) : b.readUInt32BE(4);
      for (let i = 0; i < u16(b, ifd); i++) {
        const e = ifd + 2 + i * 12;
        if (u16(b, e) === tag) return e;
      }
      throw new Error(`no tag ${tag}`);
    };
    const setLong = (b: Buffer, tag: number, v: number) => {
      const e = entry(b, tag);
      if (le(b)) {
        b.writeUInt16LE(4, e + 2);
        b.writeUInt32LE(v, e + 8);
      } else {
        b.writeUInt16BE(4, e + 2);
        b.writeUInt32BE(v, e + 8);
      }
    };
    // outside the data folder: the last test checks it holds only what the server named
    const dir = mkdtempSync(join(tmpdir(), 'tuban-hostile-tiffs-'));
    // the review's file: 1,000,000 × 1,000,000 px declared, 11 MB on disk
    const huge = Buffer.concat([small, Buffer.alloc(11 * 2 ** 20)]);
    setLong(huge, 256, 1_000_000);
    setLong(huge, 257, 1_000_000);
    writeFileSync(join(dir, 'huge.tif'), huge);
    // a strip that lies past the end of the file
    const past = Buffer.from(small);
    setLong(past, 273, small.length + 10);
    writeFileSync(join(dir, 'past-end.tif'), past);
    writeFileSync(join(dir, 'ok.tif'), small);
    const r = await registerImagery(h.run.db, h.run.config, '2024-07', [dir]);
    expect(r.registered.map((i) => basename(i.path))).toEqual(['ok.tif']);
    const why = Object.fromEntries(r.refused.map((x) => [basename(x.path), x]));
    expect(why['huge.tif'].code).toBe('too_large');
    expect(why['huge.tif'].reason).toMatch(/1000000×1000000 px .* over the 10000 Mpx ceiling/);
    expect(why['past-end.tif'].code).toBe('corrupt_tiff');
    expect(why['past-end.tif'].reason).toMatch(/strip 0 lies at bytes .* past the end of the file/);
    // under the ceiling but declaring more strips than it lists
    const config = { ...h.run.config, TUBAN_MAX_IMAGE_MPX: 100_000_000 };
    const r2 = await registerImagery(h.run.db, config, '2024-07', [join(dir, 'huge.tif')]);
    expect(r2.refused[0].code).toBe('corrupt_tiff');
    expect(r2.refused[0].reason).toMatch(/needs \d+ of them; the file lists 1 offsets/);
    // and a ceiling below a real file's size refuses it by name
    const r3 = await registerImagery(h.run.db, { ...h.run.config, TUBAN_MAX_IMAGE_MPX: 0.0001 }, '2024-07', [
      join(dir, 'ok.tif'),
    ]);
    expect(r3.refused[0]).toMatchObject({ code: 'too_large' });
    expect(r3.refused[0].reason).toContain('ok.tif');
    rmSync(dir, { recursive: true, force: true });
  });

  it('low findings: evidence comes back under its proven type and a safe name, whatever the upload was called', async () => {
    const PNG = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex');
    const polyglot = Buffer.concat([PNG, Buffer.from('<html><script>alert(1)</script></html>')]);
    const up = await call(
      'dianqian',
      'POST',
      `/api/patches/${OWN}/evidence?filename=${encodeURIComponent('../现场.html')}`,
      polyglot,
      { 'content-type': 'image/png' },
    );
    expect(up.statusCode, up.body).toBe(201);
    const r = await call('dianqian', 'GET', `/api/evidence/${up.json().id}`);
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toBe('image/png');
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.headers['content-disposition']).toMatch(
      /^attachment; filename="__\.png"; filename\*=UTF-8''%E7%8E%B0%E5%9C%BA\.png$/,
    );
  });

  it('keeps the evidence of other towns where it is (the data folder holds only what the server named)', () => {
    for (const f of filesUnder(h.run.config.dataDir)) {
      const rel = f.slice(h.run.config.dataDir.length + 1);
      expect(rel, f).toMatch(/^(evidence\/[0-9a-f]{2}\/[0-9a-f]{64}\.(jpg|png|pdf)|pgdata\/.*)$/);
      expect(dirname(f).startsWith(h.run.config.dataDir)).toBe(true);
    }
  });
});
