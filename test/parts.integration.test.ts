import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { EPSG_4548 } from '../core/crs.ts';
import { detectRegion, detectTile } from '../pipeline/detect.tile.ts';
import { MemorySource } from '../pipeline/raster.source.ts';
import { WindowView } from '../pipeline/raster.view.ts';
import { partGrid } from '../pipeline/window.grid.ts';
import { runBatch } from './helpers/batch.ts';
import { BatchProgressReader } from '../workers/batch.progress.ts';
import { redisConnection } from '../workers/queues.ts';
import { updatePartAndTile } from '../store/batch.parts.ts';
import { echoModel } from './helpers/echo.ts';
import { freshRun, type Run } from './helpers/run.ts';
import { cleanup } from './helpers/services.ts';

/** Returns the after image's first band, so any stitching must reproduce the input exactly. */
const echo = echoModel(96, 16);

describe('scene parts', () => {
  it('cut a scene into parts that cover it exactly once', () => {
    const parts = partGrid(1000, 700, 256);
    expect(parts.length).toBe(4 * 3);
    const seen = new Uint8Array(1000 * 700);
    for (const p of parts)
      for (let y = p.y; y < p.y + p.height; y++) for (let x = p.x; x < p.x + p.width; x++) seen[y * 1000 + x]++;
    expect(seen.every((v) => v === 1)).toBe(true);
    expect(parts.at(-1)).toMatchObject({ part: 11, x: 768, y: 512, width: 232, height: 188 });
  });

  it('detect each part with a margin of context and get what the whole scene gives', async () => {
    const W = 300,
      H = 220;
    const bands = [0, 1, 2].map((b) => Uint8Array.from({ length: W * H }, (_, i) => (i * 7 + b * 13) % 251));
    const scene = new MemorySource(
      {
        file: 'scene',
        widthPx: W,
        heightPx: H,
        bandCount: 3,
        sampleType: 'uint8',
        nodata: null,
        crs: EPSG_4548,
        geoTransform: [611200, 0.5, 0, 2713600, 0, -0.5],
      },
      bands,
    );
    const whole = await detectTile({ after: scene, baselines: [{ source: scene }], model: echo });
    for (const p of partGrid(W, H, 128)) {
      const r = await detectRegion({
        after: scene,
        baselines: [{ source: scene }],
        model: echo,
        region: p,
        marginPx: 16,
      });
      for (let y = 0; y < p.height; y++)
        for (let x = 0; x < p.width; x++) {
          expect(r.probability[y * p.width + x]).toBeCloseTo(whole.probability[(p.y + y) * W + p.x + x], 6);
        }
    }
    const view = new WindowView(scene, { x: 100, y: 50, width: 40, height: 30 });
    expect(view.info.geoTransform).toEqual([611250, 0.5, 0, 2713575, 0, -0.5]);
    expect(() => new WindowView(scene, { x: 290, y: 0, width: 20, height: 10 })).toThrow(/outside the 300×220 raster/);
  });
});

/**
 * The fixture batch run whole (one part per 1024² tile) and in 256² parts (16 per tile, 64 part
 * jobs): the same patches, with buildings cut by part edges merged back without slivers.
 */
describe('a batch in parts on real PostGIS and Redis', () => {
  const fixturesDir = inject('fixturesDir');
  let whole: Run;
  let parts: Run;
  beforeAll(async () => {
    whole = await freshRun(fixturesDir);
    parts = await freshRun(fixturesDir, { TUBAN_PART_PX: '256', TUBAN_CONCURRENCY: '2' });
  });
  afterAll(async () => {
    await cleanup(whole.db, whole.config);
    await cleanup(parts.db, parts.config);
  });

  it('gives the same patches as the whole-tile run', async () => {
    const a = await runBatch(whole.db, whole.config, '2024-03', '2024-02');
    const b = await runBatch(parts.db, parts.config, '2024-03', '2024-02');
    expect(b.status).toBe('completed');
    expect(b.tiles).toEqual({ total: 4, ok: 4, failed: 0 });
    expect(b.patches.new).toBe(a.patches.new);
    expect(await parts.db('batch_part').where({ status: 'vectorized' }).count('* as n').first()).toEqual({ n: '64' });
    // more raw pieces (buildings cut at part edges), the same patches after the seam merge
    const pieces = await parts.db('change_polygon').countDistinct('part as n').first();
    expect(Number(pieces!.n)).toBeGreaterThan(1);
    const wholeRows = await whole
      .db('patch')
      .orderBy('code')
      .select('code', 'area_m2', whole.db.raw('ST_AsText(geom) as wkt'));
    for (const w of wholeRows) {
      const { rows } = await parts.db.raw(
        `select p.code, p.area_m2, ST_NumGeometries(p.geom) as n, ST_NRings(p.geom) as rings,
                ST_Area(ST_Intersection(p.geom, ST_GeomFromText(?, 4548))) / ST_Area(ST_Union(p.geom, ST_GeomFromText(?, 4548))) as iou
         from patch p where ST_Intersects(p.geom, ST_GeomFromText(?, 4548))`,
        [w.wkt, w.wkt, w.wkt],
      );
      expect(rows.length, `${w.code}: patches in the parts run`).toBe(1);
      expect(rows[0].iou, `${w.code}: IoU with the whole-tile patch`).toBeGreaterThan(0.97);
      expect(Math.abs(rows[0].area_m2 - w.area_m2) / w.area_m2, `${w.code}: area`).toBeLessThan(0.03);
      expect(rows[0].n, `${w.code}: one polygon, no slivers left at part edges`).toBe(1);
    }
    // progress per scene, as `batch status` and the web batch page show it: parts and their BullMQ jobs
    const redis = redisConnection(parts.config);
    const reader = new BatchProgressReader(parts.db, parts.config, redis);
    try {
      const p = await reader.read(b.batchId);
      expect(p.queueAvailable).toBe(true);
      expect(p.tiles).toHaveLength(4);
      for (const t of p.tiles)
        expect(t).toMatchObject({ status: 'vectorized', parts: 16, parts_done: 16, part_jobs: 'completed 16' });
      expect(p.diff).toBe('completed');
    } finally {
      await reader.close();
      redis.disconnect();
    }
  });

  it('rolls parts up into their tile: sums, stage timings, and a failed part named in the reason', async () => {
    // (runs after the batch above, on its rows)
    const db = parts.db;
    const [tile] = await db('batch_tile')
      .orderBy('imagery_id')
      .limit(1)
      .select('batch_id', 'imagery_id', 'windows', 'polygons', 'timings');
    const key = { batch_id: tile.batch_id, imagery_id: tile.imagery_id };
    const sums = await db('batch_part').where(key).sum({ windows: 'windows', polygons: 'polygons' }).first();
    expect([tile.windows, tile.polygons]).toEqual([Number(sums!.windows), Number(sums!.polygons)]);
    const partTimings = (await db('batch_part').where(key).select('timings')).map(
      (r) => r.timings as Record<string, number>,
    );
    const inferSum = partTimings.reduce((a, t) => a + (t.infer ?? 0), 0);
    expect(Math.abs(Number(tile.timings.infer) - inferSum)).toBeLessThan(0.05 * partTimings.length + 1e-6); // each addition rounded to 0.1 ms

    const part = await db('batch_part')
      .where({ ...key, part: 5 })
      .first('x', 'y', 'width', 'height');
    const status = await db.transaction((trx) =>
      updatePartAndTile(trx, Number(tile.batch_id), Number(tile.imagery_id), 5, {
        status: 'failed',
        error_code: 'corrupt_tiff',
        error_message: 'detect: x.tif: damaged',
        timings: { read: 1.2 },
      }),
    );
    expect(status).toBe('failed');
    const after = await db('batch_tile').where(key).first('status', 'error_code', 'error_message', 'timings');
    expect(after).toMatchObject({
      status: 'failed',
      error_code: 'corrupt_tiff',
      error_message: `part 5 (${part.x},${part.y} ${part.width}×${part.height} px): detect: x.tif: damaged`,
    });
    expect(Number(after.timings.read)).toBeCloseTo(Number(tile.timings.read) + 1.2, 1);
    // a failed tile stays failed and keeps its reason when another part reports
    expect(
      await db.transaction((trx) =>
        updatePartAndTile(trx, Number(tile.batch_id), Number(tile.imagery_id), 6, {
          status: 'vectorized',
          windows: 1,
          polygons: 0,
          valid_px: 1,
        }),
      ),
    ).toBe('failed');
    expect(await db('batch_tile').where(key).first('error_message')).toEqual({ error_message: after.error_message });
  });
});

/** The same batch with building regularisation: outlines redrawn, areas within the limit, recorded per patch. */
describe('a regularised batch', () => {
  const fixturesDir = inject('fixturesDir');
  let run: Run;
  beforeAll(async () => {
    run = await freshRun(fixturesDir, { TUBAN_REGULARISE: 'true', TUBAN_REGULARISE_MAX_CHANGE: '0.08' });
  });
  afterAll(async () => cleanup(run.db, run.config));

  it('redraws building patches as rectangles or at right angles, never changing an area by more than the limit', async () => {
    const s = await runBatch(run.db, run.config, '2024-03', '2024-02');
    expect(s.patches.new).toBe(5);
    const { rows } = await run.db.raw(
      `select code, regularised, area_m2, raw_area_m2, ST_IsValid(geom) as valid, ST_NPoints(geom) as points from patch order by code`,
    );
    expect(rows.filter((r: { regularised: string | null }) => r.regularised !== null).length).toBeGreaterThan(0);
    for (const r of rows) {
      expect(r.valid).toBe(true);
      if (r.regularised === null) {
        expect(r.raw_area_m2).toBeNull();
        continue;
      }
      expect(['rectangle', 'orthogonal']).toContain(r.regularised);
      expect(Math.abs(r.area_m2 - r.raw_area_m2) / r.raw_area_m2, `${r.code}: area change`).toBeLessThanOrEqual(
        0.08 + 1e-3,
      );
      if (r.regularised === 'rectangle') expect(r.points).toBe(5);
    }
    const truth = JSON.parse(readFileSync(join(fixturesDir, 'truth.geojson'), 'utf8')) as {
      features: { properties: { expect: string }; geometry: unknown }[];
    };
    for (const f of truth.features.filter((x) => x.properties.expect === 'patch')) {
      const { rows: hit } = await run.db.raw(
        `with t as (select ST_SetSRID(ST_GeomFromGeoJSON(?), 4548) g) select ST_Area(ST_Intersection(p.geom, t.g)) / ST_Area(ST_Union(p.geom, t.g)) as iou from patch p, t where ST_Intersects(p.geom, t.g)`,
        [JSON.stringify(f.geometry)],
      );
      expect(hit[0].iou).toBeGreaterThanOrEqual(0.5);
    }
  });
});
