import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import type { Config } from '../config/env.ts';
import type { Db } from '../store/db.ts';
import { loadFixtureLayers, registerFixtureMonths, runBatch } from './helpers/batch.ts';
import { cleanup, isolatedConfig, migratedDb } from './helpers/services.ts';

/**
 * Issue 33: patch codes stay unique whatever the count. A district-month that already holds 9,998
 * patches (a dense district's first month) takes the fixture batch's new ones as its 9,999th,
 * 10,000th, …: before, `lpad('10000', 4, '0')` made the 10,000th '…-1000', the code of an earlier
 * patch, and the whole diff rolled back.
 */
describe('patch codes at scale', () => {
  const fixturesDir = inject('fixturesDir');
  let config: Config;
  let db: Db;
  beforeEach(async () => {
    config = isolatedConfig();
    db = await migratedDb(config);
    await loadFixtureLayers(db, fixturesDir);
    await registerFixtureMonths(db, config, fixturesDir);
  });
  afterEach(async () => cleanup(db, config));

  it('numbers the 10,000th patch of a district-month and those after it with codes of their own', async () => {
    // 9,998 patches of 350206 in 2024-03 from an earlier batch, far from the fixture scene
    const [earlier] = await db('batch')
      .insert({
        month: '2024-03',
        baseline_month: '2024-02',
        status: 'completed',
        model_name: 'seed',
        model_version: '0',
      })
      .returning('id');
    await db.raw(
      `insert into patch (code, month, seq, batch_id, baseline_month, district_code, town_code, town_name, area_m2,
                          source_tiles, model_name, model_version, status, geom, centroid, extension_m2)
       select patch_code('350206', '2024-03', k), '2024-03', k, ?, '2024-02', '350206', '350206001', '殿前街道', 100,
              '{}', 'seed', '0', 'detected', g, ST_PointOnSurface(g), 100
       from generate_series(1, 9998) k,
            lateral (select ST_Multi(ST_MakeEnvelope(500000 + (k % 100) * 20, 2600000 + (k / 100) * 20,
                                                      500010 + (k % 100) * 20, 2600010 + (k / 100) * 20, 4548)) g) x`,
      [earlier.id],
    );
    const summary = await runBatch(db, config, '2024-03', '2024-02');
    expect(summary.patches.new).toBeGreaterThanOrEqual(3);
    const fresh = await db('patch')
      .whereNot({ batch_id: earlier.id })
      .orderBy('seq')
      .select('code', 'seq', 'district_code');
    expect(fresh.length).toBe(summary.patches.new);
    for (const p of fresh) {
      expect(p.seq).toBeGreaterThanOrEqual(9999);
      expect(p.code).toBe(`${p.district_code}-202403-${String(p.seq).padStart(4, '0')}`);
    }
    expect(fresh.map((p) => p.code)).toContain('350206-202403-10000');
    expect(fresh.map((p) => p.code)).toContain('350206-202403-10001');
    const [{ n, codes }] = (
      await db.raw(`select count(*)::int as n, count(distinct code)::int as codes from patch where month = '2024-03'`)
    ).rows;
    expect(codes).toBe(n);
    expect(n).toBeGreaterThanOrEqual(10_001);
    // the earlier patches keep their four-digit codes
    expect(await db('patch').where({ seq: 42, batch_id: earlier.id }).first('code')).toEqual({
      code: '350206-202403-0042',
    });
  }, 180_000);
});
