import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Knex } from 'knex';
import type { Config } from '../config/env.ts';
import { sqlDir } from './sql.ts';
import { splitSqlStatements } from './sql.split.ts';
import { BadInputError } from '../core/errors.ts';

/** knex migrations whose bodies are the files in sql/migrations, with {{srid}} filled in. */
class SqlMigrationSource implements Knex.MigrationSource<string> {
  constructor(private readonly srid: number) {}
  async getMigrations(): Promise<string[]> {
    return readdirSync(join(sqlDir, 'migrations'))
      .filter((f) => f.endsWith('.sql'))
      .sort();
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

/** Tables whose rows are history: the app role may add rows and read them, nothing else. */
const APPEND_ONLY = ['audit_event', 'patch_event'];

/**
 * Lets the role the app logs in as use the schema without owning it: rows in every table
 * (INSERT and SELECT only on the history tables; nothing on knex's own), sequences, functions.
 * Not owning the tables, it cannot ALTER them (switch the append-only triggers off), drop or
 * truncate them. Run by the owner, after the migrations.
 */
async function grantAppRole(db: Knex, schema: string, role: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_]*$/.test(role))
    throw new BadInputError('bad_option', `app role "${role}" must be a lower-case SQL identifier`, {
      field: 'TUBAN_APP_ROLE',
    });
  const who = await db.raw('select current_user as me, exists (select 1 from pg_roles where rolname = ?) as known', [
    role,
  ]);
  if (!who.rows[0].known)
    throw new BadInputError(
      'bad_option',
      `app role "${role}" does not exist; create it first (create role ${role} login)`,
      { field: 'TUBAN_APP_ROLE' },
    );
  if (who.rows[0].me === role)
    throw new BadInputError(
      'bad_option',
      `run the migrations as the owner role, not as the app role "${role}" itself`,
      { field: 'TUBAN_APP_ROLE' },
    );
  const owned = await db.raw(
    `select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = ? and pg_get_userbyid(c.relowner) = ? limit 5`,
    [schema, role],
  );
  if (owned.rows.length)
    throw new BadInputError(
      'bad_option',
      `app role "${role}" owns ${owned.rows.map((r: { relname: string }) => r.relname).join(', ')} in schema ${schema}: the app must not own its tables (reassign them: reassign owned by ${role} to <owner>)`,
      { field: 'TUBAN_APP_ROLE' },
    );
  const s = `"${schema}"`;
  const r = `"${role}"`;
  for (const sql of [
    `grant usage on schema ${s} to ${r}`,
    `grant select, insert, update, delete on all tables in schema ${s} to ${r}`,
    `revoke all on ${APPEND_ONLY.map((t) => `${s}.${t}`).join(', ')}, ${s}.knex_migrations, ${s}.knex_migrations_lock from ${r}`,
    `grant select, insert on ${APPEND_ONLY.map((t) => `${s}.${t}`).join(', ')} to ${r}`,
    `grant select on ${s}.knex_migrations to ${r}`,
    `grant usage, select on all sequences in schema ${s} to ${r}`,
    `grant execute on all functions in schema ${s} to ${r}`,
  ]) {
    await db.raw(sql);
  }
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
    throw new Error(
      `database schema "${schema}" stores geometries in EPSG:${stored}, but TUBAN_STORAGE_SRID is ${config.TUBAN_STORAGE_SRID}; use the schema's SRID or a new schema`,
    );
  }
  if (config.TUBAN_APP_ROLE && config.DATABASE_URL) await grantAppRole(db, schema, config.TUBAN_APP_ROLE);
  return applied as string[];
}
