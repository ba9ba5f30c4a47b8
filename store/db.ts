import { AsyncLocalStorage } from 'node:async_hooks';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import knexFactory, { type Knex } from 'knex';
import type { Config } from '../config/env.ts';
import { BadInputError, TransientError } from '../core/errors.ts';

/**
 * A connection to the database or a transaction on it: what every store function takes. A function
 * given a transaction runs its statements inside it; given the pool, each statement takes a connection.
 */
export type Db = Knex | Knex.Transaction;

/**
 * The town whose user the work at hand serves (a town user's request), for the database's own town
 * scope (migration 020): every connection taken inside `townScope.run({ town }, …)` has the setting
 * tuban.town naming it, and row-level security shows that session only the town's patches and what
 * hangs on them. Work outside it (analysts, supervisors, workers, the CLI) runs with the setting empty.
 */
export const townScope = new AsyncLocalStorage<{ town: string | null }>();

/** The setting a pooled connection was last given (kept on the connection object itself). */
const TOWN_SET = Symbol('tuban.town');

/**
 * Gives each connection the town of the work that takes it, before its first statement: knex takes a
 * connection from its pool for each query or transaction, so a query that forgets its town filter is
 * scoped all the same. A connection whose setting already matches costs nothing more.
 */
function scopeConnections(db: Knex): void {
  const client = db.client as { acquireConnection(): Promise<unknown> };
  const acquire = client.acquireConnection.bind(client);
  client.acquireConnection = async () => {
    const conn = (await acquire()) as { query(sql: string, values: unknown[]): Promise<unknown>; [TOWN_SET]?: string };
    const town = townScope.getStore()?.town ?? '';
    if ((conn[TOWN_SET] ?? '') !== town) {
      await conn.query("select set_config('tuban.town', $1, false)", [town]);
      conn[TOWN_SET] = town;
    }
    return conn;
  };
}

/**
 * A knex instance on PostgreSQL (DATABASE_URL) or, when unset, on embedded PGlite with PostGIS.
 * Every connection's search_path is the tuban schema first, then public (where PostGIS lives).
 * PGlite is one in-process connection: the CLI runs workers in the same process in that mode.
 */
export async function openDb(config: Config, opts: { statementTimeoutMs?: number } = {}): Promise<Db> {
  const schema = config.TUBAN_DB_SCHEMA;
  if (config.DATABASE_URL) {
    const db = knexFactory({
      client: 'pg',
      // the server's connections give up on a statement after its request time limit; workers' diffs may run longer
      // and skip JIT compiling: a request's statements are short, and compiling one cost a CSV export ~0.35 s
      connection: opts.statementTimeoutMs
        ? { connectionString: config.DATABASE_URL, statement_timeout: opts.statementTimeoutMs, options: '-c jit=off' }
        : config.DATABASE_URL,
      searchPath: [schema, 'public'],
      pool: { min: 0, max: 8 },
      // a connection that cannot be made is reported once, with its reason, by the caller (below, or the
      // query's own error), not as a stack trace from knex's pool
      log: {
        warn: (m: unknown) => {
          if (!String(m).startsWith('Acquire connection error')) console.warn(m);
        },
      },
      acquireConnectionTimeout: 20_000,
    });
    scopeConnections(db);
    try {
      await db.raw('select 1');
    } catch (err) {
      await db.destroy();
      const e = err as NodeJS.ErrnoException;
      // a server that does not answer is worth retrying; a refused login or a missing database is not
      const down =
        ['ECONNREFUSED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'ECONNRESET'].includes(String(e.code)) ||
        /timeout/i.test(e.message);
      const where = config.DATABASE_URL.replace(/\/\/[^@/]*@/, '//');
      if (down)
        throw new TransientError(
          `PostgreSQL does not answer at ${where} (${e.message}); start it or set DATABASE_URL`,
          { service: 'postgresql' },
        );
      throw new BadInputError('database', `PostgreSQL at ${where} refused: ${e.message}`, { service: 'postgresql' });
    }
    return db;
  }
  const { PGlite } = await import('@electric-sql/pglite');
  const { postgis } = await import('@electric-sql/pglite-postgis');
  const { default: ClientPgLite } = await import('knex-pglite');
  const dir = join(config.dataDir, 'pgdata');
  mkdirSync(dir, { recursive: true });
  const pglite = await PGlite.create(dir, { extensions: { postgis } });
  const db = knexFactory({
    client: ClientPgLite as unknown as typeof knexFactory.Client,
    dialect: 'postgres',
    connection: () => ({ pglite }) as object,
    searchPath: [schema, 'public'],
  } as Knex.Config);
  await db.raw('create extension if not exists postgis');
  return db;
}

export { isEmbedded } from '../config/env.ts';
