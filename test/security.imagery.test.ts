import sharp from 'sharp';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { registerImagery } from '../imagery/register.ts';
import { encodeGeoTiff, writeGeoTiff } from '../pipeline/io/geotiff.write.ts';
import { GeoTiffSource } from '../pipeline/io/geotiff.source.ts';
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

  it('coarse zoom levels draw the previews made at registration, in the same colours, and still only the town', async () => {
    const { rows } = await h.run.db.raw(`
      select preview_path, preview_res_m, ST_X(ST_Centroid(footprint)) x, ST_Y(ST_Centroid(footprint)) y
      from imagery where month = '2024-03' order by path limit 1`);
    expect(rows[0].preview_path).toBeTruthy();
    expect(rows[0].preview_res_m).toBeCloseTo(4, 6);
    const at = (z: number, x: number, y: number) => {
      const size = 256 * [16, 8, 4, 2][z];
      return { i: Math.floor(x / size), j: Math.floor((10_000_000 - y) / size) };
    };
    const png = async (who: string, z: number, t: { i: number; j: number }) => {
      const r = await call(who, 'GET', `/api/map/tiles/2024-03/${z}/${t.i}/${t.j}.png`);
      expect(r.statusCode, `${who} z${z}`).toBe(200);
      return sharp(r.rawPayload).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
    };
    /** Mean RGB and the share of shown pixels in a square of a tile. */
    const mean = (t: { data: Buffer; info: { width: number } }, x0: number, y0: number, n: number) => {
      const sum = [0, 0, 0];
      let shown = 0;
      for (let y = y0; y < y0 + n; y++)
        for (let x = x0; x < x0 + n; x++) {
          const o = (y * t.info.width + x) * 4;
          if (!t.data[o + 3]) continue;
          shown++;
          for (let b = 0; b < 3; b++) sum[b] += t.data[o + b];
        }
      return { rgb: sum.map((v) => v / Math.max(1, shown)), shown: shown / (n * n) };
    };
    const { x, y } = rows[0];
    // the 2 m tile (full resolution) against the same 512 m of the 4 m tile (the preview)
    const fine = at(3, x, y);
    const coarse = at(2, x, y);
    const full = mean(await png('ana', 3, fine), 0, 0, 256);
    const prev = mean(await png('ana', 2, coarse), (fine.i % 2) * 128, (fine.j % 2) * 128, 128);
    expect(full.shown).toBeGreaterThan(0.2);
    expect(Math.abs(prev.shown - full.shown)).toBeLessThan(0.05);
    for (let b = 0; b < 3; b++) expect(Math.abs(prev.rgb[b] - full.rgb[b]), `band ${b}`).toBeLessThan(6);
    // the coarse tile is the previews': painted green, the tile turns green (and back when the rows are restored)
    const dir = mkdtempSync(join(tmpdir(), 'tuban-preview-'));
    const previews: { id: string; preview_path: string }[] = (
      await h.run.db.raw(`select id, preview_path from imagery where month = '2024-03'`)
    ).rows;
    for (const p of previews) {
      const src = await GeoTiffSource.open(p.preview_path);
      const { widthPx, heightPx, geoTransform, crs } = src.info;
      await src.close();
      const green = new Uint8Array(widthPx * heightPx * 3).map((_, i) => [20, 200, 40][i % 3]);
      const file = join(dir, `${p.id}.tif`);
      writeGeoTiff(file, { widthPx, heightPx, samples: green, bands: 3, crs, geoTransform });
      await h.run.db('imagery').where({ id: p.id }).update({ preview_path: file });
    }
    try {
      const g = mean(await png('ana', 2, coarse), (fine.i % 2) * 128, (fine.j % 2) * 128, 128);
      expect(g.rgb.map(Math.round)).toEqual([20, 200, 40]);
    } finally {
      for (const p of previews) await h.run.db('imagery').where({ id: p.id }).update({ preview_path: p.preview_path });
      rmSync(dir, { recursive: true, force: true });
    }
    // 16 m: one tile holds the whole district; a town user sees their town and its margin only
    const whole = at(0, x, y);
    const [all, mine] = [mean(await png('ana', 0, whole), 0, 0, 256), mean(await png('dianqian', 0, whole), 0, 0, 256)];
    expect(all.shown).toBeGreaterThan(0);
    expect(mine.shown).toBeGreaterThan(0);
    expect(mine.shown).toBeLessThan(all.shown);
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
    /** The first IFD's entry for `tag` (either byte order, as TIFF allows): where its type and value sit. */
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
