import { createHash } from 'node:crypto';
import type { Db } from '../store/db.ts';
import { storable } from '../core/text.ts';

/** At most this many top-level fields are described; the rest are counted. */
const MAX_FIELDS = 30;
/** Strings up to this length are kept as they are (reasons, dates, codes); longer ones by length and hash. */
const MAX_STRING = 200;
const SECRET = /pass(word)?|token|secret|webhook/i;

const sha256 = (v: string | Buffer) => createHash('sha256').update(v).digest('hex');

/**
 * What the audit keeps of a request body: bounded whatever the body is (about 10 KB at most),
 * and built without serialising anything the client nested (a body nested a million deep is
 * described as well as a flat one). Top-level fields keep short values; long strings become
 * their length, start and SHA-256; objects and arrays their size; secrets only that they were
 * there; an upload its size and SHA-256.
 */
export function summariseBody(body: unknown): unknown {
  if (body === undefined || body === null) return null;
  if (Buffer.isBuffer(body)) return { bytes: body.length, sha256: sha256(body) };
  if (Array.isArray(body)) return { type: 'array', items: body.length };
  if (typeof body !== 'object') return summariseValue(body);
  const keys = Object.keys(body);
  const fields = Object.fromEntries(
    keys
      .slice(0, MAX_FIELDS)
      .map((k) => [
        storable(k.slice(0, 64)),
        SECRET.test(k) ? { redacted: true } : summariseValue((body as Record<string, unknown>)[k]),
      ]),
  );
  return keys.length > MAX_FIELDS ? { fields, more_fields: keys.length - MAX_FIELDS } : { fields };
}

function summariseValue(v: unknown): unknown {
  if (v === null || typeof v === 'boolean') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  // NUL and half UTF-16 pairs shown, not stored: jsonb refuses them, and a refused request is audited whatever it carried
  if (typeof v === 'string')
    return v.length <= MAX_STRING
      ? storable(v)
      : { chars: v.length, start: storable(v.slice(0, 80)), sha256: sha256(v.toWellFormed()) };
  if (Array.isArray(v)) return { type: 'array', items: v.length };
  if (typeof v === 'object') return { type: 'object', fields: Object.keys(v as object).length };
  return { type: typeof v };
}

export interface AuditEntry {
  userId: number | null;
  username: string | null;
  remoteAddr: string;
  method: string;
  path: string;
  status: number;
  detail: unknown;
}

/** One audit row; called inside the transaction of the change it records. */
export async function writeAudit(db: Db, e: AuditEntry): Promise<void> {
  await db('audit_event').insert({
    user_id: e.userId,
    username: e.username === null ? null : storable(e.username.slice(0, 64)),
    remote_addr: e.remoteAddr,
    method: e.method,
    path: storable(e.path.slice(0, 500)),
    status: e.status,
    detail: JSON.stringify(e.detail),
  });
}
