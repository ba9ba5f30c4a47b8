import type { Config } from '../../config/env.ts';
import type { Db } from '../../store/db.ts';
import { loadFixtureLayers, registerFixtureMonths } from './batch.ts';
import { isolatedConfig, migratedDb } from './services.ts';

export interface Run {
  config: Config;
  db: Db;
  /** Environment for child `tuban` processes that share this run's schema, prefix and data folder. */
  env: NodeJS.ProcessEnv;
}

/** A fresh schema and queue prefix with the fixture layers and both months registered. */
export async function freshRun(fixturesDir: string, overrides: Record<string, string | undefined> = {}): Promise<Run> {
  const config = isolatedConfig(overrides);
  const db = await migratedDb(config);
  await loadFixtureLayers(db, fixturesDir);
  await registerFixtureMonths(db, config, fixturesDir);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)),
    DATABASE_URL: config.DATABASE_URL,
    REDIS_URL: config.REDIS_URL,
    TUBAN_DB_SCHEMA: config.TUBAN_DB_SCHEMA,
    TUBAN_MODEL_DIR: config.TUBAN_MODEL_DIR,
    TUBAN_QUEUE_PREFIX: config.TUBAN_QUEUE_PREFIX,
    TUBAN_DATA_DIR: config.dataDir,
  };
  return { config, db, env };
}
