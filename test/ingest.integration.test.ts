import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../config/env.ts';
import { crs, EPSG_4548 } from '../core/crs.ts';
import { writeGeoTiff } from '../pipeline/io/geotiff.write.ts';
import type { Db } from '../store/db.ts';
import { registerImagery } from '../imagery/register.ts';
import { importLayer } from '../store/layers.ts';
import { cleanup, isolatedConfig, migratedDb } from './helpers/services.ts';

describe('imagery registration and layer import on real PostGIS', () => {
  let config: Config;
  let db: Db;
  beforeAll(async () => {
    config = isolatedConfig();
    db = await migratedDb(config);
  });
  afterAll(async () => cleanup(db, config));

  const tif = (name: string, opts: { gsd?: number; epsg?: number; geographic?: boolean } = {}) => {
    const p = join(config.dataDir, name);
    const gsd = opts.gsd ?? 0.5;
    writeGeoTiff(p, {
      widthPx: 16,
      heightPx: 16,
      samples: new Uint8Array(16 * 16 * 3).fill(90),
      bands: 3,
      crs: opts.epsg ? crs(opts.epsg, Boolean(opts.geographic)) : EPSG_4548,
      geoTransform: [611200, gsd, 0, 2713600, 0, -gsd],
    });
    return p;
  };

  it('registers a good tile and stores its footprint in the storage CRS', async () => {
    const r = await registerImagery(db, config, '2024-05', [tif('good.tif')]);
    expect(r.refused).toEqual([]);
    const { rows } = await db.raw(
      'select ST_SRID(footprint) srid, ST_Area(footprint) a, gsd_m from imagery where month = ?',
      ['2024-05'],
    );
    expect(rows[0]).toMatchObject({ srid: 4548, a: 64, gsd_m: 0.5 });
  });

  it('refuses files without georeferencing, in an unknown CRS, or at the wrong GSD, naming file and reason', async () => {
    const plain = join(config.dataDir, 'plain.tif');
    await sharp({ create: { width: 8, height: 8, channels: 3, background: '#888' } })
      .tiff()
      .toFile(plain);
    const notTiff = join(config.dataDir, 'notes.tif');
    writeFileSync(notTiff, 'this is not a tiff');
    const r = await registerImagery(db, config, '2024-06', [
      plain,
      notTiff,
      tif('unknown-crs.tif', { epsg: 9999 }),
      tif('two-metre.tif', { gsd: 2 }),
      tif('ok.tif'),
      join(config.dataDir, 'missing.tif'),
    ]);
    expect(r.registered.map((i) => i.path)).toEqual([join(config.dataDir, 'ok.tif')]);
    const byFile = Object.fromEntries(r.refused.map((x) => [x.path.split('/').pop(), x]));
    expect(byFile['plain.tif'].code).toBe('no_georeferencing');
    expect(byFile['plain.tif'].reason).toContain(plain);
    expect(byFile['notes.tif'].code).toBe('corrupt_tiff');
    expect(byFile['unknown-crs.tif'].code).toBe('unknown_crs');
    expect(byFile['unknown-crs.tif'].reason).toMatch(/EPSG:9999 is not known/);
    expect(byFile['two-metre.tif'].code).toBe('gsd_mismatch');
    expect(byFile['two-metre.tif'].reason).toMatch(/2\.000 m differs from the configured 0\.5 m/);
    expect(byFile['missing.tif'].code).toBe('file_missing');
  });

  it('imports a layer, repairs a bow-tie, rejects unusable features by index and code, and replaces on re-import', async () => {
    const p = join(config.dataDir, 'farmland.geojson');
    const sq = (x: number) => [
      [
        [x, 0],
        [x + 10, 0],
        [x + 10, 10],
        [x, 10],
        [x, 0],
      ],
    ];
    writeFileSync(
      p,
      JSON.stringify({
        type: 'FeatureCollection',
        features: [
          { type: 'Feature', properties: { code: 'F1' }, geometry: { type: 'Polygon', coordinates: sq(611200) } },
          {
            type: 'Feature',
            properties: { code: 'BOWTIE' },
            geometry: {
              type: 'Polygon',
              coordinates: [
                [
                  [611300, 0],
                  [611310, 10],
                  [611310, 0],
                  [611300, 10],
                  [611300, 0],
                ],
              ],
            },
          },
          {
            type: 'Feature',
            properties: { code: 'LINE' },
            geometry: {
              type: 'LineString',
              coordinates: [
                [0, 0],
                [1, 1],
              ],
            },
          },
          { type: 'Feature', properties: { code: 'EMPTY' }, geometry: { type: 'Polygon', coordinates: [] } },
          {
            type: 'Feature',
            properties: { code: 'FLAT' },
            geometry: {
              type: 'Polygon',
              coordinates: [
                [
                  [611400, 0],
                  [611410, 0],
                  [611420, 0],
                  [611400, 0],
                ],
              ],
            },
          },
          {
            type: 'Feature',
            properties: { code: 'BADDATE', valid_to: '2024-13-01' },
            geometry: { type: 'Polygon', coordinates: sq(611500) },
          },
        ],
      }),
    );
    const r = await importLayer(db, p, 'farmland', 4548);
    expect(r.imported).toBe(2);
    expect(r.repaired).toEqual([
      expect.objectContaining({ index: 1, code: 'BOWTIE', reason: expect.stringMatching(/Self-intersection/) }),
    ]);
    expect(r.rejected.map((x) => [x.index, x.code])).toEqual([
      [2, 'LINE'],
      [3, 'EMPTY'],
      [4, 'FLAT'],
      [5, 'BADDATE'],
    ]);
    expect(r.rejected[0].reason).toMatch(/LineString is not Polygon/);
    const again = await importLayer(db, p, 'farmland', 4548);
    expect(again.replaced).toBe(2);
    const [{ n }] = await db('reference_feature').where({ kind: 'farmland' }).count({ n: '*' });
    expect(Number(n)).toBe(2);
    const { rows } = await db.raw(
      `select bool_and(ST_IsValid(geom)) v, round(sum(ST_Area(geom))) a from reference_feature where kind = 'farmland'`,
    );
    expect(rows[0]).toEqual({ v: true, a: 150 });
  });

  it('transforms lon/lat layers into the storage CRS', async () => {
    const p = join(config.dataDir, 'town.geojson');
    writeFileSync(
      p,
      JSON.stringify({
        type: 'FeatureCollection',
        features: [
          {
            type: 'Feature',
            properties: { code: '350206001', name: '殿前街道', district_code: '350206' },
            geometry: {
              type: 'Polygon',
              coordinates: [
                [
                  [118.1, 24.5],
                  [118.11, 24.5],
                  [118.11, 24.51],
                  [118.1, 24.51],
                  [118.1, 24.5],
                ],
              ],
            },
          },
        ],
      }),
    );
    const r = await importLayer(db, p, 'town');
    expect(r.srid).toBe(4326);
    const { rows } = await db.raw(
      `select ST_SRID(geom) s, ST_XMin(geom) x, name from reference_feature where kind = 'town'`,
    );
    expect(rows[0].s).toBe(4548);
    expect(rows[0].x).toBeGreaterThan(600_000);
    expect(rows[0].name).toBe('殿前街道');
  });

  it('keeps the history append-only at the database level', async () => {
    await expect(db.raw('update patch_event set actor = ?', ['x'])).resolves.toBeDefined(); // no rows: trigger not reached
    const [batch] = await db('batch')
      .insert({ month: '2024-05', baseline_month: '2024-04', status: 'completed', model_name: 'm', model_version: '1' })
      .returning('id');
    const [patch] = await db('patch')
      .insert({
        code: 'T-1',
        month: '2024-05',
        seq: 1,
        batch_id: batch.id,
        baseline_month: '2024-04',
        district_code: '350206',
        area_m2: 1,
        extension_m2: 1,
        source_tiles: [],
        model_name: 'm',
        model_version: '1',
        geom: db.raw('ST_Multi(ST_MakeEnvelope(0,0,1,1,4548))'),
        centroid: db.raw('ST_SetSRID(ST_MakePoint(0.5,0.5),4548)'),
      })
      .returning('id');
    await db('patch_event').insert({ patch_id: patch.id, actor: 'test', type: 'detected' });
    await expect(db.raw('update patch_event set actor = ?', ['mallory'])).rejects.toThrow(
      /append-only: UPDATE refused/,
    );
    await expect(db.raw('delete from patch_event')).rejects.toThrow(/append-only: DELETE refused/);
    // nor back-dated, nor slipped in among old rows: the database stamps id and time whatever the insert says
    const [first] = await db('patch_event').where({ patch_id: patch.id }).select('id');
    const [forged] = await db('patch_event')
      .insert({ id: 1_000_000, at: '2001-01-01T00:00:00Z', patch_id: patch.id, actor: 'mallory', type: 'close' })
      .returning(['id', 'at']);
    expect(Number(forged.id)).toBe(Number(first.id) + 1);
    expect(Math.abs(new Date(forged.at).getTime() - Date.now())).toBeLessThan(60_000);
    const [audit] = await db('audit_event')
      .insert({
        at: '2001-01-01T00:00:00Z',
        method: 'POST',
        path: '/x',
        status: 200,
        remote_addr: '127.0.0.1',
        detail: '{}',
      })
      .returning(['at']);
    expect(new Date(audit.at).getFullYear()).toBeGreaterThan(2001);
  });
});
