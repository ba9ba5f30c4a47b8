import type { Db } from './db.ts';
import { z } from 'zod';
import { en, say } from '../i18n/say.ts';
import { BadInputError, TubanError } from '../core/errors.ts';
import { MONTH_PATTERN } from '../core/month.ts';
import { TownCode } from '../workflow/actions.schema.ts';
import { planTransition, RULES, type Action } from '../workflow/lifecycle.ts';
import type { WorkflowEnv } from '../workflow/env.ts';
import { scopeTown } from './patch.row.ts';
import type { User } from './users.ts';
import { actOnRow, parseActionBody, reasonOf } from './workflow.ts';
import { queueMoveNotices } from './notify.ts';

/** The moves a month's volume needs many at a time: dispatching, dismissing, extending, escalating, closing. */
export const BULK_ACTIONS = ['dispatch', 'dismiss', 'extend', 'escalate', 'close'] as const;
export type BulkAction = (typeof BULK_ACTIONS)[number];

/** The most patches one request moves: a month of a large city; more is a narrower filter or another request. */
export const BULK_MAX = 5000;

/** Which patches a bulk move is for: codes, or a filter (a month at least), within the user's town for a town user. */
export const BulkSelection = z
  .object({
    codes: z
      .array(z.string().min(1).max(64))
      .min(1)
      .max(BULK_MAX)
      .optional()
      .describe('the patches by code; or a filter:'),
    month: z.string().regex(MONTH_PATTERN).optional(),
    town: TownCode.optional(),
    status: z
      .string()
      .regex(/^[a-z_]{1,32}$/)
      .optional(),
    class: z.enum(['ecological', 'farmland', 'water', 'general']).optional(),
  })
  .refine((s) => s.codes !== undefined || s.month !== undefined, { message: en('bulk_select') });
export type BulkSelection = z.infer<typeof BulkSelection>;

/** What became of one patch: moved from a state to a state, or refused with the reason (said in the reader's words by the caller). */
export interface BulkOutcome {
  code: string;
  moved: boolean;
  from?: string;
  to?: string;
  /** Refused: the error kind and code, and the error itself for the caller to put into words. */
  error?: { kind: string; code?: string; err: TubanError };
}

class DryRun extends Error {}

/**
 * One action on many patches, each judged on its own: in one transaction, the selected patches are
 * locked in id order and each is moved as applyAction would move it (state, role, the action's own
 * checks), in a savepoint of its own, so one refused leaves the others moved; every move is one history
 * event. A dry run does all of it and rolls back. The body is checked once, and a role that may never
 * take the action is refused before anything is selected.
 */
export async function applyBulk(
  db: Db,
  env: WorkflowEnv,
  user: User,
  action: BulkAction,
  rawBody: unknown,
  selection: BulkSelection,
  opts: { dryRun?: boolean } = {},
): Promise<{ action: BulkAction; dry_run: boolean; matched: number; outcomes: BulkOutcome[] }> {
  if (!(BULK_ACTIONS as readonly string[]).includes(action))
    throw new BadInputError('bad_action', say('bulk_action', { action, actions: BULK_ACTIONS }));
  if (!RULES[action as Action].roles.includes(user.role)) planTransition('*', 'detected', action, user.role);
  const body = parseActionBody(action, rawBody);
  const today = env.today();
  const outcomes: BulkOutcome[] = [];
  let matched = 0;
  try {
    await db.transaction(async (trx) => {
      const town = scopeTown(user);
      const rows = await trx('patch')
        .modify((q) => {
          if (town) void q.where({ town_code: town });
          if (selection.codes) void q.whereIn('code', selection.codes);
          if (selection.month) void q.where({ month: selection.month });
          if (selection.town) void q.where({ town_code: selection.town });
          if (selection.status) void q.where({ status: selection.status });
          if (selection.class) void q.where({ class: selection.class });
        })
        .whereRaw('patch_is_live(status)')
        .orderBy('id')
        .limit(BULK_MAX + 1)
        .forUpdate()
        .select('*');
      if (rows.length > BULK_MAX)
        throw new BadInputError('too_many', say('bulk_too_many', { max: BULK_MAX }), { max: BULK_MAX });
      matched = rows.length;
      for (const p of rows) {
        try {
          const r = await trx.transaction((sp) => actOnRow(sp, env, user, p, action, body, today));
          outcomes.push(
            r === 'repeat'
              ? { code: p.code, moved: false, from: p.status, to: p.status }
              : { code: p.code, moved: true, from: r.from, to: r.to },
          );
        } catch (err) {
          if (!(err instanceof TubanError)) throw err;
          outcomes.push({
            code: p.code,
            moved: false,
            from: p.status,
            error: { kind: err.kind, code: errCode(err), err },
          });
        }
      }
      // one message per town (and one to the supervisors) for the whole move, in its transaction
      const movedCodes = new Set(outcomes.filter((o) => o.moved).map((o) => o.code));
      const moved = rows
        .filter((p: { code: string }) => movedCodes.has(p.code))
        .map((p: { id: number }) => Number(p.id));
      await queueMoveNotices(trx, action, moved, user.username, today, reasonOf(body));
      if (opts.dryRun) throw new DryRun();
    });
  } catch (err) {
    if (!(err instanceof DryRun)) throw err;
  }
  // codes asked for that are not there (or not the user's town's): said, as a 404 would be
  for (const code of selection.codes ?? [])
    if (!outcomes.some((o) => o.code === code)) {
      const err = new BadInputError('not_found', say('patch_unknown', { code }));
      outcomes.push({ code, moved: false, error: { kind: 'not_found', code: 'not_found', err } });
    }
  return { action, dry_run: !!opts.dryRun, matched, outcomes };
}

const errCode = (err: TubanError): string | undefined =>
  'code' in err && typeof (err as { code?: unknown }).code === 'string' ? (err as { code: string }).code : undefined;
