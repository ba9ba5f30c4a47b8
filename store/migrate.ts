import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Knex } from 'knex';
import type { Config } from '../config/env.ts';
import { sqlDir } from './sql.ts';
import { splitSqlStatements } from './sql.split.ts';

/** knex migrations whose bodies are the files in sql/migrations, with {{srid}} filled in. */
class SqlMigrationSource implements Knex.MigrationSource<string> {
  constructor(private readonly srid: number) {}
  async getMigrations(): Promise<string[]> {
    return readdirSync(join(sqlDir, 'migrations')).filter((f) => f.endsWith('.sql')).sort();
  }
  getMigrationName(name: string): string {
    return name;
  }
  async getMigration(name: string): Promise<Knex.Migration> {
    const text = readFileSync(join(sqlDir, 'migrations', name), 'utf8').replaceAll('{{srid}}', String(this.srid));
    return {
      up: async (knex) => {
        for (const statement of splitSqlStatements(text)) await knex.raw(statement);
      },
      down: async () => {
        throw new Error(`${name}: migrations are forward-only; restore from backup to go back`);
      },
    };
  }
}

/** Advisory lock key taken while PostGIS and the schema are created ('tuban:migrate' as an int32). */
const MIGRATE_LOCK = 0x7475626d;

/**
 * Creates PostGIS and the schema if needed, then applies pending migrations. Returns their names.
 * Several processes may start at once on a fresh database (workers, the server, test files), and
 * `if not exists` does not make concurrent creations safe (the loser fails on a unique index), nor
 * does knex's migration lock cover creating its own tables; so on PostgreSQL the whole of it runs
 * while one transaction holds an advisory lock, and the others wait and then find nothing to do.
 * The embedded database has one process and one connection, and takes no lock.
 */
export async function migrate(db: Knex, config: Config): Promise<string[]> {
  if (!config.DATABASE_URL) return migrateUnlocked(db, config);
  return db.transaction(async (trx) => {
    await trx.raw('select pg_advisory_xact_lock(?)', [MIGRATE_LOCK]);
    return migrateUnlocked(db, config);
  });
}

async function migrateUnlocked(db: Knex, config: Config): Promise<string[]> {
  const schema = config.TUBAN_DB_SCHEMA;
  await db.raw('create extension if not exists postgis');
  await db.raw(`create schema if not exists "${schema}"`);
  const [, applied] = await db.migrate.latest({
    migrationSource: new SqlMigrationSource(config.TUBAN_STORAGE_SRID),
    schemaName: schema,
    tableName: 'knex_migrations',
  });
  const row = await db.raw(`select value from "${schema}".setting where key = 'storage_srid'`);
  const stored = Number(row.rows[0]?.value);
  if (stored !== config.TUBAN_STORAGE_SRID) {
    throw new Error(`database schema "${schema}" stores geometries in EPSG:${stored}, but TUBAN_STORAGE_SRID is ${config.TUBAN_STORAGE_SRID}; use the schema's SRID or a new schema`);
  }
  return applied as string[];
}
