import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Knex } from 'knex';
import type { Db } from './db.ts';
import { ROOT } from '../core/root.ts';

const SQL_DIR = join(ROOT, 'sql');
const cache = new Map<string, string>();

/**
 * Text of `sql/<name>.sql`; a `/*include <other>*\/` in it is replaced by `sql/<other>.sql` (one
 * filter shared by a page and its count).
 */
function sqlText(name: string): string {
  let text = cache.get(name);
  if (text === undefined) {
    // Whole-line comments go: they document the parameters, and knex would bind `:name` in them too.
    text = readFileSync(join(SQL_DIR, `${name}.sql`), 'utf8')
      .split('\n')
      .filter((l) => !l.trimStart().startsWith('--'))
      .join('\n')
      .replace(/\/\*include ([a-z_/]+)\*\//g, (_m, other: string) => sqlText(other));
    cache.set(name, text);
  }
  return text;
}

/** Runs `sql/<name>.sql` with named bindings (`:name` in the file). Returns the rows. */
export async function runSql<T = Record<string, unknown>>(
  db: Db,
  name: string,
  params: Record<string, unknown> = {},
): Promise<T[]> {
  const result = await db.raw(sqlText(name), params as Knex.ValueDict);
  return (result.rows ?? []) as T[];
}

/**
 * Runs `sql/<name>.sql` as a cursor in the transaction given and hands its rows to `each`, `batch` at a
 * time, in order: a result too large to hold (a province's month) is read as it is used. The next
 * batch is asked for while `each` works on this one, so the database and the caller work at once.
 */
export async function eachBatch<T = Record<string, unknown>>(
  trx: Knex.Transaction,
  name: string,
  params: Record<string, unknown>,
  batch: number,
  each: (rows: T[]) => Promise<void>,
): Promise<void> {
  await trx.raw(
    `declare tuban_batch no scroll cursor for ${sqlText(name).replace(/;\s*$/, '')}`,
    params as Knex.ValueDict,
  );
  const fetch = () => {
    const rows = trx.raw(`fetch ${batch} from tuban_batch`).then((r) => (r.rows ?? []) as T[]);
    // handled at once: a fetch that fails while `each` waits (a slow client) is thrown at the next await,
    // not reported as an unhandled rejection that ends the process
    rows.catch(() => {});
    return rows;
  };
  let next: Promise<T[]> | null = fetch();
  while (next) {
    const rows: T[] = await next;
    next = rows.length === batch ? fetch() : null;
    if (rows.length > 0) await each(rows);
  }
  await trx.raw('close tuban_batch');
}

export const sqlDir = SQL_DIR;

/**
 * Several queries at once on `db`: side by side on the pool's connections, one after another inside a
 * transaction (its one connection takes one statement at a time; pg warns of the rest and pg 9 refuses them).
 */
export async function allOn<T extends readonly unknown[]>(
  db: Db,
  work: { [K in keyof T]: () => PromiseLike<T[K]> },
): Promise<T> {
  if (!db.isTransaction) return (await Promise.all(work.map((w) => w()))) as unknown as T;
  const out: unknown[] = [];
  for (const w of work) out.push(await w());
  return out as unknown as T;
}
