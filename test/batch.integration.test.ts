import { copyFileSync, readFileSync, truncateSync, statSync } from 'node:fs';
import { cmdBatchRetry } from '../cli/commands.ts';
import { createLogger } from '../core/log.ts';
import { errorFate } from '../core/errors.ts';
import { OnnxChangeModel } from '../pipeline/io/model.onnx.ts';
import { batchTiles } from '../store/batch.ts';
import { diffJob, partJob } from '../workers/jobs.ts';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import type { Config } from '../config/env.ts';
import type { Db } from '../store/db.ts';
import { registerImagery } from '../imagery/register.ts';
import { copyMonth, loadFixtureLayers, registerFixtureMonths, runBatch } from './helpers/batch.ts';
import { cleanup, isolatedConfig, migratedDb } from './helpers/services.ts';

/**
 * The monthly batch on the fixtures against the machine's real PostgreSQL/PostGIS and Redis,
 * through BullMQ workers: the patches must be exactly the unpermitted new buildings.
 */
describe('monthly batch on real PostGIS and Redis', () => {
  const fixturesDir = inject('fixturesDir');
  let config: Config;
  let db: Db;
  const truth = JSON.parse(readFileSync(join(fixturesDir, 'truth.geojson'), 'utf8')) as {
    features: { properties: { id: string; expect: string; town: string; flags: string[] }; geometry: unknown }[];
  };

  // every scenario gets a fresh schema and queue prefix with the layers and both fixture months,
  // and runs the batches it needs itself: none depends on another's leftovers
  beforeEach(async () => {
    config = isolatedConfig();
    db = await migratedDb(config);
    await loadFixtureLayers(db, fixturesDir);
    await registerFixtureMonths(db, config, fixturesDir);
  });
  afterEach(async () => cleanup(db, config));

  /** 2024-04: the same pixels as 2024-03 (so no change), one tile damaged after delivery; its batch. */
  async function damagedApril() {
    const dir = join(config.dataDir, 'imagery-2024-04');
    const files = copyMonth(fixturesDir, '2024-03', dir);
    const reg = await registerImagery(db, config, '2024-04', [dir]);
    expect(reg.refused).toEqual([]);
    const damaged = files[3];
    truncateSync(damaged, Math.floor(statSync(damaged).size / 3));
    return { damaged, summary: await runBatch(db, config, '2024-04') };
  }

  /** IoU of each patch of the month with a ground-truth footprint, computed in PostGIS. */
  async function iouWith(
    month: string,
    geometry: unknown,
  ): Promise<
    {
      code: string;
      iou: number;
      town_code: string;
      farmland_m2: number;
      ecological_m2: number;
      source_tiles: string[];
    }[]
  > {
    const { rows } = await db.raw(
      `with t as (select ST_SetSRID(ST_GeomFromGeoJSON(?), 4548) g)
       select p.code, p.town_code, p.farmland_m2, p.ecological_m2, p.source_tiles,
              ST_Area(ST_Intersection(p.geom, t.g)) / ST_Area(ST_Union(p.geom, t.g)) as iou
       from patch p, t where p.month = ? and ST_Intersects(p.geom, t.g) order by iou desc`,
      [JSON.stringify(geometry), month],
    );
    return rows;
  }

  it('emits one patch per unpermitted new building and none for permitted ones', async () => {
    const s = await runBatch(db, config, '2024-03');
    expect(s.status).toBe('completed');
    expect(s.tiles).toEqual({ total: 4, ok: 4, failed: 0 });
    const expected = truth.features.filter((f) => f.properties.expect === 'patch');
    expect(s.patches.new).toBe(expected.length);

    for (const f of expected) {
      const hits = await iouWith('2024-03', f.geometry);
      expect(hits.length, `${f.properties.id}: overlapping patches`).toBe(1);
      expect(hits[0].iou, `${f.properties.id}: IoU`).toBeGreaterThanOrEqual(0.5);
      expect(hits[0].town_code, `${f.properties.id}: town`).toBe(f.properties.town);
      expect(Number(hits[0].farmland_m2) > 0, `${f.properties.id}: farmland flag`).toBe(
        f.properties.flags.includes('farmland'),
      );
      expect(Number(hits[0].ecological_m2) > 0, `${f.properties.id}: ecological flag`).toBe(
        f.properties.flags.includes('ecological'),
      );
      if (f.properties.id === 'seam') expect(hits[0].source_tiles).toHaveLength(2);
    }
    for (const f of truth.features.filter((f) => f.properties.expect === 'permitted')) {
      expect(await iouWith('2024-03', f.geometry), `${f.properties.id} must not be a patch`).toHaveLength(0);
    }
  });

  it('gives patches stable codes, attributes and a history event', async () => {
    await runBatch(db, config, '2024-03');
    const { rows } =
      await db.raw(`select code, area_m2, status, model_name, district_code, town_name, grid_code, ST_IsValid(geom) as valid,
      (select count(*) from patch_event e where e.patch_id = p.id and e.type = 'detected')::int as events from patch p order by code`);
    expect(rows.map((r: { code: string }) => r.code)).toEqual([
      '350206-202403-0001',
      '350206-202403-0002',
      '350206-202403-0003',
      '350206-202403-0004',
      '350206-202403-0005',
    ]);
    for (const r of rows) {
      expect(r).toMatchObject({
        status: 'detected',
        model_name: 'cva-baseline',
        district_code: '350206',
        valid: true,
        events: 1,
      });
      expect(r.area_m2).toBeGreaterThan(300);
      expect(r.grid_code).toMatch(/^35020600[12]-0[12]$/);
    }
  });

  it('drops the patches whose mean change probability is below the floor, and records the floor', async () => {
    await runBatch(db, config, '2024-03');
    const all: { area_m2: number; mean_prob: number }[] = await db('patch')
      .select('area_m2', 'mean_prob')
      .orderBy('mean_prob');
    expect(all).toHaveLength(5);
    // a floor between the second and the third patch's mean: the batch keeps the upper three, unchanged
    const floor = (all[1].mean_prob + all[2].mean_prob) / 2;
    expect(all[2].mean_prob - all[1].mean_prob).toBeGreaterThan(1e-4);
    const floored = isolatedConfig({ TUBAN_MIN_MEAN_PROB: String(floor) });
    const fdb = await migratedDb(floored);
    try {
      await loadFixtureLayers(fdb, fixturesDir);
      await registerFixtureMonths(fdb, floored, fixturesDir);
      const s = await runBatch(fdb, floored, '2024-03');
      expect(s.patches.new).toBe(3);
      const kept = await fdb('patch').select('area_m2', 'mean_prob').orderBy('mean_prob');
      expect(kept).toEqual(all.slice(2));
      const [batch] = await fdb('batch').select('params');
      expect(batch.params.minMeanProb).toBeCloseTo(floor, 12);
    } finally {
      await cleanup(fdb, floored);
    }
  });

  it('records a re-run of the same month as re-detections, never new patches', async () => {
    await runBatch(db, config, '2024-03');
    const before = await db('patch').select('code', 'area_m2').orderBy('code');
    const s = await runBatch(db, config, '2024-03');
    expect(s.patches).toEqual({ new: 0, redetected: 5 });
    expect(await db('patch').select('code', 'area_m2').orderBy('code')).toEqual(before);
    const [{ n }] = await db('patch_observation').where({ kind: 'redetected' }).count({ n: '*' });
    expect(Number(n)).toBe(5);
  });

  it('fails a corrupt tile alone, with its reason, while the rest of the batch completes', async () => {
    await runBatch(db, config, '2024-03');
    const { damaged, summary: s } = await damagedApril();
    expect(s.status).toBe('completed_with_failures');
    expect(s.tiles).toEqual({ total: 4, ok: 3, failed: 1 });
    expect(s.failedTiles).toHaveLength(1);
    expect(s.failedTiles[0].path).toBe(damaged);
    expect(s.failedTiles[0].code).toBe('corrupt_tiff');
    expect(s.failedTiles[0].reason).toContain(damaged);
    expect(s.failedTiles[0].reason).toMatch(/^detect: /); // the step of the part job that failed
    expect(s.patches.new).toBe(0);
  });

  it('re-runs just the failed tile with retry --failed once the file is repaired', async () => {
    await runBatch(db, config, '2024-03');
    expect((await damagedApril()).summary.tiles.failed).toBe(1);
    const batch = await db('batch').where({ month: '2024-04' }).first();
    const [failed] = await batchTiles(db, batch.id).then((t) => t.filter((x) => x.status === 'failed'));
    copyFileSync(join(fixturesDir, 'imagery', '2024-03', failed.path.split('/').pop()!), failed.path);
    const before = await db('batch_tile')
      .where({ batch_id: batch.id, status: 'vectorized' })
      .select('imagery_id', 'updated_at');
    const r = await cmdBatchRetry(db, config, createLogger('warn'), {
      batchId: batch.id,
      wait: true,
      inProcessWorkers: true,
    });
    expect(r.retried).toBe(1);
    expect(r.summary).toMatchObject({ status: 'completed', tiles: { total: 4, ok: 4, failed: 0 }, failedTiles: [] });
    // The tiles that had succeeded were not run again.
    expect(
      await db('batch_tile')
        .where({ batch_id: batch.id })
        .whereIn(
          'imagery_id',
          before.map((b) => b.imagery_id),
        )
        .select('imagery_id', 'updated_at'),
    ).toEqual(before);
    await expect(
      cmdBatchRetry(db, config, createLogger('warn'), { batchId: batch.id, wait: false, inProcessWorkers: false }),
    ).rejects.toThrow(/is completed; only a batch that finished with failed tiles/);
  });

  it('yields the same rows when a stage job runs twice', async () => {
    await runBatch(db, config, '2024-03');
    const batch = await db('batch').where({ month: '2024-03' }).orderBy('id').first();
    const ctx = { db, config, model: await OnnxChangeModel.load(config.modelDir), log: createLogger('warn') };
    const rows = async () => ({
      polygons: await db('change_polygon')
        .where({ batch_id: batch.id })
        .orderBy(['imagery_id', 'seq'])
        .select('imagery_id', 'seq', 'area_m2', db.raw('ST_AsText(geom) as wkt')),
      patches: await db('patch').orderBy('code').select('code', 'area_m2'),
      events: Number((await db('patch_event').count({ n: '*' }))[0].n),
      observations: Number((await db('patch_observation').count({ n: '*' }))[0].n),
    });
    const first = await rows();
    await partJob(ctx, batch.id, 5);
    await partJob(ctx, batch.id, 5);
    const summary = await diffJob(ctx, batch.id);
    expect(summary.patches.new).toBe(5);
    expect(await rows()).toEqual(first);
    // a job naming a tile or a part the batch does not have is not found: the worker does not retry it
    await expect(partJob(ctx, batch.id, 999_999)).rejects.toMatchObject({ kind: 'not_found' });
    await expect(partJob(ctx, batch.id, 5, 999)).rejects.toMatchObject({ kind: 'not_found' });
    expect(errorFate.not_found.retry).toBe(false);
    await ctx.model.close();
  });

  it('fails a tile with no baseline at once and says so', async () => {
    const dir = join(config.dataDir, 'imagery-2025-01');
    copyMonth(fixturesDir, '2024-03', dir);
    await registerImagery(db, config, '2025-01', [dir]);
    const s = await runBatch(db, config, '2025-01');
    expect(s.status).toBe('failed');
    expect(s.failedTiles.map((t) => t.code)).toEqual(['no_baseline', 'no_baseline', 'no_baseline', 'no_baseline']);
  });
});
