import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Config } from '../config/env.ts';
import type { Db } from '../store/db.ts';
import { loadFixtureLayers, registerFixtureMonths, runBatch } from './helpers/batch.ts';
import { cleanup, isolatedConfig, migratedDb } from './helpers/services.ts';

/** The same schema and SQL on the embedded PGlite + PostGIS the demo uses (DATABASE_URL unset). */
describe('monthly batch on embedded PGlite', () => {
  const fixturesDir = inject('fixturesDir');
  let config: Config;
  let db: Db;
  beforeAll(async () => {
    config = isolatedConfig({ DATABASE_URL: undefined });
    expect(config.DATABASE_URL).toBeUndefined();
    db = await migratedDb(config);
  });
  afterAll(async () => cleanup(db, config));

  it('emits the same five patches as on PostgreSQL', async () => {
    await loadFixtureLayers(db, fixturesDir);
    await registerFixtureMonths(db, config, fixturesDir);
    const s = await runBatch(db, config, '2024-03');
    expect(s).toMatchObject({
      status: 'completed',
      tiles: { total: 4, ok: 4, failed: 0 },
      patches: { new: 5, redetected: 0 },
    });
    const { rows } = await db.raw(
      `select code, town_code, farmland_m2 > 0 as farmland, ecological_m2 > 0 as ecological from patch order by code`,
    );
    expect(rows).toEqual([
      { code: '350206-202403-0001', town_code: '350206002', farmland: false, ecological: false },
      { code: '350206-202403-0002', town_code: '350206001', farmland: false, ecological: false },
      { code: '350206-202403-0003', town_code: '350206001', farmland: false, ecological: true },
      { code: '350206-202403-0004', town_code: '350206002', farmland: true, ecological: false },
      { code: '350206-202403-0005', town_code: '350206001', farmland: false, ecological: false },
    ]);
    const again = await runBatch(db, config, '2024-03');
    expect(again.patches).toEqual({ new: 0, redetected: 5 });
  });
});
