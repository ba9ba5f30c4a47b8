import { say } from '../i18n/say.ts';
import type { Db } from './db.ts';
import { NotFoundError } from '../core/errors.ts';
import type { User } from './users.ts';

/** One patch row as a user may reach it, and what every store that reads or changes patches shares. */

/** The town a user is confined to, or null for city-wide roles. */
export const scopeTown = (u: User) => (u.role === 'town' ? u.townCode : null);

/** One patch as the user may see it; another town's patch is "not found", never "forbidden". */
export async function scopedPatch(db: Db, user: User, code: string, lock = false): Promise<Record<string, any>> {
  const q = db('patch').where({ code });
  const town = scopeTown(user);
  if (town) q.andWhere({ town_code: town });
  if (lock) q.forUpdate();
  const row = await q.first();
  if (!row) throw new NotFoundError(say('patch_unknown', { code }));
  return row;
}

/**
 * Patch numbers of a district and month are handed out as max(seq) + 1 by the batch emit and by splits; this
 * transaction-scoped lock makes the two take turns instead of colliding on the same number.
 */
export async function lockPatchNumbers(trx: Db, month: string, district: string): Promise<void> {
  await trx.raw('select pg_advisory_xact_lock(hashtext(?))', [`tuban-patch-seq-${district}-${month}`]);
}

/** A date column as YYYY-MM-DD (pg gives Date objects for date columns). */
export function isoDay(v: unknown): string | null {
  if (!v) return null;
  if (v instanceof Date)
    return `${v.getFullYear()}-${String(v.getMonth() + 1).padStart(2, '0')}-${String(v.getDate()).padStart(2, '0')}`;
  return typeof v === 'string' ? v.slice(0, 10) : null;
}
