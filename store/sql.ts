import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Knex } from 'knex';
import { escapeLiteral } from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import type { Db } from './db.ts';
import { BadInputError } from '../core/errors.ts';
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

/** A value written into SQL text as a literal: text quoted by pg's own escapeLiteral, null as NULL. */
export type SqlLiteral = string | number | boolean | null;

function literal(name: string, v: SqlLiteral | undefined): string {
  if (v === undefined) throw new Error(`SQL parameter :${name} is not given`);
  if (v === null) return 'NULL';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`SQL parameter :${name} is not a finite number: ${v}`);
    return String(v);
  }
  // no control characters (a line break could end a comment the text sits in, were there one): the values
  // are filters, codes, dates and the catalogue's words
  if (/\p{Cc}/u.test(v))
    throw new BadInputError('bad_parameter', `${name}: a control character in ${JSON.stringify(v)}`, { field: name });
  return escapeLiteral(v);
}

/**
 * `sql/<name>.sql` with each `:name` (not a `::cast`) replaced by its value as a literal, without its closing
 * semicolon: one statement, to be wrapped (in COPY, a cursor, EXPLAIN).
 */
function literalSql(name: string, params: Record<string, SqlLiteral>): string {
  return sqlText(name)
    .replace(/(?<![:\w]):([a-z_]+)\b/g, (_m, key: string) => literal(key, params[key]))
    .replace(/;\s*$/, '');
}

/**
 * Runs `work` on the connection of a transaction that has the settings a text query runs under (see eachText):
 * the cells' number and date forms, memory to sort in, no JIT; with `indexOrder`, planned without a sort.
 * The connection is spoken to directly: knex would read a `?` in the literals as a binding.
 */
async function inTextTransaction<T>(
  db: Db,
  indexOrder: boolean | undefined,
  work: (conn: PgConnection) => Promise<T>,
): Promise<T> {
  return db.transaction(async (trx) => {
    await textSettings(trx, indexOrder);
    return work((await trx.client.acquireConnection()) as PgConnection);
  });
}

/** The settings of inTextTransaction, for this transaction only. */
async function textSettings(trx: Knex.Transaction, indexOrder = false): Promise<void> {
  const settings: Record<string, string> = {
    // doubles in their shortest exact form (a connection may have asked for more digits)
    extra_float_digits: '1',
    // rows sorted in the database (a package's codes) are sorted in memory, in each parallel worker
    work_mem: '64MB',
    // dates as text are YYYY-MM-DD, whatever the connection's style: a cast, a third of to_char's cost
    datestyle: 'ISO, YMD',
    // no JIT compiling, on any connection (the server's have it off already; the CLI's and the workers' not):
    // the month's line-maker compiled ~4 s of CPU among its processes at 10 M patches
    jit: 'off',
  };
  if (indexOrder) {
    settings.enable_sort = 'off';
    // nor sorted by parts: at 10 M patches the planner read the month by (month, town_code) and sorted each
    // town's rows by code (1.17–1.30 s in the database) rather than read (month, town_code, code) (0.52–0.57 s)
    settings.enable_incremental_sort = 'off';
    // the leader merges the workers' rows, in order, and sends them: were it to read its own share too, the
    // workers would wait on it (at 10 M patches the month took 0.84–1.05 s in the database against 1.19–1.31)
    settings.parallel_leader_participation = 'off';
  }
  // for this transaction only, in one round trip
  await trx.raw(
    `select ${Object.keys(settings)
      .map(() => 'set_config(?, ?, true)')
      .join(', ')}`,
    Object.entries(settings).flat(),
  );
}

/** Binary COPY's 11-byte signature; its header goes on with the flags and the extension's length (int32 each). */
const COPY_SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

/**
 * Runs `sql/<name>.sql`, whose rows are one text each, and hands `each` those texts in order as UTF-8
 * bytes, many rows to a piece: for a result that is already the file (the month's CSV lines). On
 * PostgreSQL by `COPY (…) TO STDOUT` in the binary format: nothing parsed per row but a length, and the
 * query may run in parallel workers (COPY takes no bind parameters: the values are written in as
 * literals). On the embedded database, which has no COPY to a client, through a cursor. When `each`
 * throws the rest is read and dropped, so the connection is left clean, and the error is thrown. When
 * `signal` aborts (a client gone) the database is asked to stop the statement, which may still be
 * sorting the month, and the signal's reason is thrown. With `indexOrder`, the query's order is that of an
 * index it can read in order: it is planned without a sort where any other plan exists (PostgreSQL prices
 * a month read in index order above one read in bulk and sorted, though it is cheaper in memory and its
 * first rows go out at once). Returns how many rows there were.
 */
export async function eachText(
  db: Db,
  name: string,
  params: Record<string, SqlLiteral>,
  each: (piece: Buffer) => Promise<void>,
  opts: { signal?: AbortSignal; indexOrder?: boolean } = {},
): Promise<number> {
  const { signal } = opts;
  signal?.throwIfAborted();
  const sql = literalSql(name, params);
  const embedded = (db.client as { config?: { client?: unknown } }).config?.client !== 'pg';
  let count = 0;
  await inTextTransaction(db, opts.indexOrder, async (conn) => {
    // aborted while the transaction began: the statement is not sent at all (a cancel that reaches the server
    // before the statement starts is dropped, and the statement would then run, or wait on a lock, to its end)
    signal?.throwIfAborted();
    if (embedded) {
      await conn.query(`declare tuban_text no scroll cursor for ${sql}`);
      for (;;) {
        signal?.throwIfAborted();
        const { rows } = await conn.query('fetch 2000 from tuban_text');
        count += rows.length;
        if (rows.length > 0) await each(Buffer.from(rows.map((r) => Object.values(r)[0]).join(''), 'utf8'));
        if (rows.length < 2000) break;
      }
      await conn.query('close tuban_text');
      return;
    }
    const stream = conn.query(copyTo(`copy (${sql}) to stdout (format binary)`));
    // what went wrong while the COPY still sends (the caller's writer, an answer not as expected): the rest is
    // read and dropped, so the connection leaves the COPY and the transaction can end, then it is thrown
    let failed: { err: unknown } | null = null;
    let carry: Buffer | null = null;
    let header = false;
    let cancelled = Promise.resolve();
    let again: NodeJS.Timeout | undefined;
    let asking = false;
    const stop = () => {
      failed ??= { err: signal!.reason };
      // aborted just after the COPY was sent, the cancel can reach the backend while it still reads the COPY,
      // and is dropped: it is asked again each second until the COPY ends, never two at once (an unanswered
      // one waits out its 5 s before the next)
      const ask = () => {
        if (asking) return;
        asking = true;
        cancelled = cancelStatement(conn).then(() => void (asking = false));
      };
      ask();
      again = setInterval(ask, 1000);
    };
    signal?.addEventListener('abort', stop, { once: true });
    try {
      for await (const piece of stream as AsyncIterable<Buffer>) {
        if (failed) continue;
        const buf: Buffer = carry ? Buffer.concat([carry, piece]) : piece;
        carry = null;
        let at = 0;
        if (!header) {
          if (buf.length < 19 || buf.length < 19 + buf.readInt32BE(15)) {
            carry = buf;
            continue;
          }
          if (!buf.subarray(0, 11).equals(COPY_SIGNATURE)) {
            failed = { err: new Error('COPY answered without its binary header') };
            continue;
          }
          at = 19 + buf.readInt32BE(15);
          header = true;
        }
        // each row: its field count (int16; -1 ends the data), then the one field's length (int32) and bytes
        const texts: Buffer[] = [];
        while (at + 2 <= buf.length) {
          const fields = buf.readInt16BE(at);
          if (fields === -1) {
            at += 2;
            continue;
          }
          if (fields !== 1) {
            failed = { err: new Error(`${name}: a row of ${fields} columns, not one text`) };
            break;
          }
          if (at + 6 > buf.length) break;
          const len = buf.readInt32BE(at + 2);
          const end = at + 6 + Math.max(len, 0);
          if (end > buf.length) break;
          if (len > 0) texts.push(buf.subarray(at + 6, end));
          count += 1;
          at = end;
        }
        if (failed) continue;
        carry = at < buf.length ? buf.subarray(at) : null;
        if (texts.length > 0)
          try {
            await each(Buffer.concat(texts));
          } catch (err) {
            failed = { err };
          }
      }
    } catch (err) {
      // the database's own error (the cancel's, when asked); the caller's, when there was one, is the one that matters
      throw failed ? failed.err : err;
    } finally {
      signal?.removeEventListener('abort', stop);
      clearInterval(again);
      // the requests are on the wire before the transaction ends, so none can reach a later statement
      await cancelled;
    }
    if (failed) throw failed.err;
  });
  return count;
}

/**
 * The plan `eachText` would run `sql/<name>.sql` by, as EXPLAIN's lines (not run): under the same settings, so
 * a benchmark can show whether a month is read in index order or sorted.
 */
export async function explainText(
  db: Db,
  name: string,
  params: Record<string, SqlLiteral>,
  opts: { indexOrder?: boolean } = {},
): Promise<string[]> {
  const sql = literalSql(name, params);
  return inTextTransaction(db, opts.indexOrder, async (conn) => {
    const { rows } = await conn.query(`explain ${sql}`);
    return rows.map((r) => Object.values(r)[0]);
  });
}

/** The pool's node-postgres client, as much of it as is spoken to here. */
interface PgConnection {
  query(q: unknown): Readable & Promise<{ rows: Record<string, string>[] }>;
  host?: string;
  port?: number;
  processID?: number | null;
  secretKey?: number | null;
  /** Set, knex closes the connection instead of handing it out again. */
  __knex__disposed?: unknown;
}

/** The cancel request's code in PostgreSQL's protocol (1234 << 16 | 5678). */
const CANCEL_REQUEST_CODE = 80877102;

/**
 * Asks PostgreSQL to stop the statement running on `conn`: the protocol's cancel request (its length, code,
 * and the backend's process id and secret key) on a connection of its own, which the server closes once it
 * has taken it; the promise resolves then. A backend already idle ignores it. Not confirmed within 5 s, the
 * request might arrive later, while the connection runs another statement: the connection is then closed,
 * not handed out again. Never throws (the statement then ends as it would have, its rows dropped).
 */
function cancelStatement(conn: PgConnection): Promise<void> {
  const { host = 'localhost', port = 5432, processID, secretKey } = conn;
  if (typeof processID !== 'number' || typeof secretKey !== 'number') return Promise.resolve();
  return new Promise<void>((resolve) => {
    const request = Buffer.alloc(16);
    request.writeInt32BE(16, 0);
    request.writeInt32BE(CANCEL_REQUEST_CODE, 4);
    request.writeInt32BE(processID, 8);
    request.writeInt32BE(secretKey, 12);
    const socket = host.startsWith('/') ? connect(`${host}/.s.PGSQL.${port}`) : connect(port, host);
    const timer = setTimeout(() => {
      conn.__knex__disposed = 'a cancel request sent on it went unconfirmed';
      socket.destroy();
    }, 5000);
    socket.on('connect', () => socket.end(request));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
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
