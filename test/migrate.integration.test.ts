import { randomBytes } from 'node:crypto';
import knexFactory from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDb, type Db } from '../store/db.ts';
import { migrate } from '../store/migrate.ts';
import { cleanup, isolatedConfig, TEST_DATABASE_URL } from './helpers/services.ts';

/**
 * Workers, the server and the CLI each migrate when they start, and on a new installation they
 * start together. A database of its own, without PostGIS, shows the race.
 */
describe('migrations on a fresh database', () => {
  const dbName = `tuban_migrate_${randomBytes(4).toString('hex')}`;
  const admin = knexFactory({ client: 'pg', connection: TEST_DATABASE_URL, pool: { min: 0, max: 1 } });
  const fresh = () => {
    const u = new URL(TEST_DATABASE_URL);
    u.pathname = `/${dbName}`;
    return u.toString();
  };

  beforeAll(async () => {
    await admin.raw(`create database "${dbName}"`);
  });
  afterAll(async () => {
    await admin.raw(`drop database if exists "${dbName}" with (force)`);
    await admin.destroy();
  });

  it('lets several processes create PostGIS and the same and other schemas at once', async () => {
    const shared = `tuban_test_${randomBytes(4).toString('hex')}`;
    const configs = [shared, shared, shared, undefined, undefined].map((schema) =>
      isolatedConfig({ DATABASE_URL: fresh(), ...(schema ? { TUBAN_DB_SCHEMA: schema } : {}) }),
    );
    const dbs: Db[] = await Promise.all(configs.map((c) => openDb(c)));
    try {
      const applied = await Promise.all(dbs.map((db, i) => migrate(db, configs[i])));
      // each schema is migrated once: the first of the three on the shared schema applies everything, the others find nothing to do
      const onShared = applied
        .slice(0, 3)
        .map((a) => a.length)
        .sort((a, b) => a - b);
      expect(onShared[0]).toBe(0);
      expect(onShared[1]).toBe(0);
      expect(onShared[2]).toBeGreaterThan(0);
      const all = applied.slice(0, 3).find((a) => a.length > 0);
      expect(applied[3]).toEqual(all);
      expect(applied[4]).toEqual(all);
      const { rows } = await dbs[0].raw("select extversion from pg_extension where extname = 'postgis'");
      expect(rows).toHaveLength(1);
    } finally {
      // the database goes in afterAll, schemas and all
      for (const db of dbs) await db.destroy();
      for (const c of configs) await cleanup(undefined, c);
    }
  });
});
