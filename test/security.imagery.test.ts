import sharp from 'sharp';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { registerImagery } from '../store/imagery.ts';
import { encodeGeoTiff } from '../pipeline/io/geotiff.write.ts';
import { EPSG_4548 } from '../core/crs.ts';
import { hostileServer } from './helpers/hostile.ts';

/** The security review's findings (issue 17) on map imagery outside a town and on registering imagery, replayed against tuban serve on real PostGIS. */
describe('security: imagery and registration', () => {
  const h = hostileServer();
  const { call } = h;
  const fixturesDir = inject('fixturesDir');

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
});
