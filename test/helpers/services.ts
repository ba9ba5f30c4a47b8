import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type Config } from '../../config/env.ts';
import { openDb, type Db } from '../../store/db.ts';
import { migrate } from '../../store/migrate.ts';

/** The PostgreSQL the integration tests use: DATABASE_URL, else the machine's local server. */
export const TEST_DATABASE_URL =
  process.env.TUBAN_TEST_DATABASE_URL ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/**
 * A config of its own for one test file: a fresh schema in the test database, a fresh BullMQ
 * prefix in the shared Redis and a temp data folder, so test files can run side by side and
 * never touch anyone else's keys or tables.
 */
const FIXTURE_MODEL_DIR = 'models/cva-baseline';

export function isolatedConfig(overrides: Record<string, string | undefined> = {}): Config {
  const id = randomBytes(4).toString('hex');
  const env: Record<string, string | undefined> = {
    ...process.env,
    DATABASE_URL: TEST_DATABASE_URL,
    TUBAN_DB_SCHEMA: `tuban_test_${id}`,
    TUBAN_QUEUE_PREFIX: `tuban-test-${id}`,
    TUBAN_DATA_DIR: mkdtempSync(join(tmpdir(), `tuban-test-${id}-`)),
    TUBAN_LOG_LEVEL: process.env.TUBAN_LOG_LEVEL ?? 'warn',
    // The fixture scenes are synthetic (flat-coloured roofs); pipeline tests run the CVA baseline,
    // whose behaviour on them is known. The trained default is tested on its own (unit.model, eval).
    TUBAN_MODEL_DIR: FIXTURE_MODEL_DIR,
    ...overrides,
  };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  return loadConfig(env);
}

export async function migratedDb(config: Config): Promise<Db> {
  const db = await openDb(config);
  await migrate(db, config);
  return db;
}

/** Drop the test schema, the queue keys and the temp folder. */
export async function cleanup(db: Db | undefined, config: Config): Promise<void> {
  if (db) {
    if (config.DATABASE_URL) await db.raw(`drop schema if exists "${config.TUBAN_DB_SCHEMA}" cascade`);
    await db.destroy();
  }
  const { Redis } = await import('ioredis');
  const r = new Redis(config.REDIS_URL, { maxRetriesPerRequest: 1 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${config.TUBAN_QUEUE_PREFIX}:*`, 'COUNT', 500);
      if (keys.length) await r.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    r.disconnect();
  }
  rmSync(config.dataDir, { recursive: true, force: true });
}
