import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Config } from '../config/env.ts';
import type { Db } from '../store/db.ts';
import { loadFixtureLayers, registerFixtureMonths, runBatch } from './helpers/batch.ts';
import { cleanup, isolatedConfig, migratedDb } from './helpers/services.ts';
import { referenceCsv } from './helpers/csv.ts';
import { streamCsv } from '../export/patches.ts';
import { workflowEnv } from '../workflow/env.ts';

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

  it("makes the month's CSV through a cursor, the bytes the records give", async () => {
    // PGlite has no COPY to a client: the same lines, read 2,000 at a time (store/sql.ts eachText); on a
    // database of its own, so the test runs alone or in any order
    const own = isolatedConfig({ DATABASE_URL: undefined });
    const ownDb = await migratedDb(own);
    try {
      await loadFixtureLayers(ownDb, fixturesDir);
      await registerFixtureMonths(ownDb, own, fixturesDir);
      await runBatch(ownDb, own, '2024-03');
      const env = { ...workflowEnv(own), today: () => '2024-03-20' };
      const chunks: Buffer[] = [];
      const n = await streamCsv(ownDb, env, { month: '2024-03' }, async (c) => void chunks.push(Buffer.from(c)));
      expect(n).toBe(5);
      const expected = await referenceCsv(ownDb, env, '2024-03');
      expect(Buffer.concat(chunks).toString('utf8')).toBe(expected.toString('utf8'));
    } finally {
      await cleanup(ownDb, own);
    }
  });
});
