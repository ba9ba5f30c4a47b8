import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import type { Config } from '../config/env.ts';
import type { Db } from '../store/db.ts';
import { loadFixtureLayers, registerFixtureMonths, runBatch, seedPatches } from './helpers/batch.ts';
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
    const earlier = await seedPatches(db, 9998, {
      origin: [500000, 2600000],
      step: 20,
      model: 'seed',
      version: '0',
      extensionM2: 100,
    });
    const summary = await runBatch(db, config, '2024-03', '2024-02');
    expect(summary.patches.new).toBeGreaterThanOrEqual(3);
    const fresh = await db('patch')
      .whereNot({ batch_id: earlier })
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
    expect(await db('patch').where({ seq: 42, batch_id: earlier }).first('code')).toEqual({
      code: '350206-202403-0042',
    });
  }, 180_000);
});
