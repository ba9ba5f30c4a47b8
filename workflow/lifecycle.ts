import { say } from '../i18n/say.ts';
import { ConflictError, ForbiddenError, BadInputError } from '../core/errors.ts';

/** Who acts. `town` users act only on their own town's patches (enforced in every query). */
export type Role = 'analyst' | 'town' | 'supervisor' | 'admin';
export const ROLES: readonly Role[] = ['analyst', 'town', 'supervisor', 'admin'];

export type PatchStatus =
  | 'detected'
  | 'dispatched'
  | 'dismissed'
  | 'illegal'
  | 'legal'
  | 'false_change'
  | 'pre_existing'
  | 'rectifying'
  | 'rectified'
  | 'closed'
  | 'merged'
  | 'split';

/** Every state a patch can be in, in the order of its life. */
export const PATCH_STATES: readonly PatchStatus[] = [
  'detected',
  'dispatched',
  'illegal',
  'rectifying',
  'rectified',
  'closed',
  'dismissed',
  'legal',
  'false_change',
  'pre_existing',
  'merged',
  'split',
];

/** States from which nothing more happens to the patch (it may come back only as a new, rebuilt patch). */
export const FINAL_STATES: readonly PatchStatus[] = [
  'dismissed',
  'legal',
  'false_change',
  'pre_existing',
  'closed',
  'merged',
  'split',
];

/**
 * How a patch relates to the registered buildings (the `building` layer): `new` with none within the
 * legal buffer, `extension` (扩建) meeting one but lying mostly outside it, `on_building` (原址改建加建)
 * lying mostly inside a registered footprint: rebuilt on the spot, raised, built on top.
 */
export const BUILDING_RELATIONS = ['new', 'extension', 'on_building'] as const;
export type BuildingRelation = (typeof BUILDING_RELATIONS)[number];

export const DISMISS_REASONS = ['cloud', 'shadow', 'vehicle', 'seasonal_crop', 'duplicate', 'other'] as const;
export const VERIFY_RESULTS = ['illegal', 'legal', 'false_change', 'pre_existing'] as const;
export const MEASURES = ['demolish', 'confiscate', 'fine_legalise'] as const;
export const VIOLATIONS = ['construction', 'land_use'] as const;

export type Action =
  | 'dispatch'
  | 'dismiss'
  | 'verify'
  | 'rectify'
  | 'report_rectified'
  | 'close'
  | 'send_back'
  | 'correct_town'
  | 'merge'
  | 'split'
  | 'extend'
  | 'escalate';

interface Rule {
  from: readonly PatchStatus[];
  roles: readonly Role[];
  /** Target state; `verify` takes it from the result. Absent: the state does not change. */
  to?: PatchStatus;
  label: string;
}

/**
 * The lifecycle as one table: discover → dispatch (下发) → verify on site (外业核查) → rectify by a
 * deadline (整改) → close (销号), with the side actions analysts and supervisors take.
 */
export const RULES: Record<Action, Rule> = {
  dispatch: { from: ['detected'], to: 'dispatched', roles: ['analyst'], label: 'dispatch to the town (下发)' },
  dismiss: { from: ['detected'], to: 'dismissed', roles: ['analyst'], label: 'dismiss with a reason' },
  verify: { from: ['dispatched'], roles: ['town'], label: 'record the on-site verification (外业核查)' },
  rectify: {
    from: ['illegal'],
    to: 'rectifying',
    roles: ['town', 'supervisor'],
    label: 'start rectification with a measure',
  },
  report_rectified: {
    from: ['rectifying'],
    to: 'rectified',
    roles: ['town'],
    label: 'report rectified, with evidence',
  },
  close: { from: ['rectified'], to: 'closed', roles: ['supervisor'], label: 'close (销号)' },
  send_back: {
    from: ['rectified'],
    to: 'rectifying',
    roles: ['supervisor'],
    label: 'send back for more rectification',
  },
  correct_town: { from: ['detected', 'dispatched'], roles: ['analyst'], label: "correct the patch's town" },
  merge: { from: ['detected', 'dispatched'], roles: ['analyst'], label: 'merge another patch into this one' },
  split: {
    from: ['detected', 'dispatched'],
    to: 'split',
    roles: ['analyst'],
    label: 'split into parts drawn as polygons',
  },
  extend: { from: ['dispatched', 'rectifying'], roles: ['supervisor'], label: 'extend the running deadline' },
  escalate: { from: ['dispatched', 'rectifying'], roles: ['supervisor'], label: 'list for supervision (挂牌督办)' },
};

export const ACTIONS = Object.keys(RULES) as Action[];

/** The moves open from a state, as "action (roles)" strings for messages and the API. */
export function allowedMoves(status: PatchStatus, role?: Role): { action: Action; roles: readonly Role[] }[] {
  return ACTIONS.filter((a) => RULES[a].from.includes(status) && (!role || RULES[a].roles.includes(role))).map((a) => ({
    action: a,
    roles: RULES[a].roles,
  }));
}

/**
 * Checks that `role` may take `action` on a patch in `status` and returns the new status.
 * Refusals name the current state and the moves that are allowed (HTTP 409 / 403).
 */
export function planTransition(
  code: string,
  status: PatchStatus,
  action: Action,
  role: Role,
  result?: string,
): PatchStatus {
  const rule = RULES[action];
  if (!rule.roles.includes(role)) {
    throw new ForbiddenError(say('role_may_not', { role, action, roles: rule.roles }), { action, role });
  }
  if (!rule.from.includes(status)) {
    const allowed = allowedMoves(status);
    const moves = allowed.map((m) => `${m.action} (${m.roles.join('/')})`);
    const text = allowed.length
      ? say('wrong_state', {
          code,
          status,
          action,
          from: rule.from,
          allowed: allowed.map((m) => say('move_by', { action: m.action, roles: m.roles })),
        })
      : say('final_state', { code, status, action, from: rule.from });
    throw new ConflictError(text, { code, status, action, allowed: moves });
  }
  if (action === 'verify') {
    if (!result || !(VERIFY_RESULTS as readonly string[]).includes(result))
      throw new BadInputError('bad_field', say('result_invalid', { results: VERIFY_RESULTS }));
    return result as PatchStatus;
  }
  return rule.to ?? status;
}

/** Deadline class of a patch: protected zones get shorter periods. */
export type PatchClass = 'ecological' | 'farmland' | 'water' | 'general';

/** Verification and rectification periods in working days per class. */
export interface DeadlinePolicy {
  verifyDays: Record<PatchClass, number>;
  rectifyDays: Record<PatchClass, number>;
  /** Working days overdue after which a patch is listed for supervision (挂牌督办). */
  escalateAfterDays: number;
}

export const DEFAULT_POLICY: DeadlinePolicy = {
  verifyDays: { ecological: 3, farmland: 3, water: 3, general: 5 },
  rectifyDays: { ecological: 10, farmland: 10, water: 10, general: 20 },
  escalateAfterDays: 5,
};

/**
 * The moves that take a patch on towards its end (the others — corrections, merges, splits, extensions,
 * escalations — are there when needed, not owed). A patch waits on a role when the role has one of these.
 */
export const FORWARD_ACTIONS: readonly Action[] = [
  'dispatch',
  'dismiss',
  'verify',
  'rectify',
  'report_rectified',
  'close',
  'send_back',
];

/** The states in which a patch waits on `role`: its to-do list. */
export function statesWaitingOn(role: Role): PatchStatus[] {
  return [...new Set(FORWARD_ACTIONS.filter((a) => RULES[a].roles.includes(role)).flatMap((a) => RULES[a].from))];
}

/** Every kind of history event: the actions, and what the batch, the daily sweep and the users add. */
export const EVENT_TYPES: readonly string[] = [
  ...ACTIONS,
  'detected',
  'redetected',
  'rebuilt',
  'overdue',
  'escalated',
  'evidence_added',
  'merged',
  'split_from',
  'note',
  'imagery_check',
  'deadline_recounted',
  'reported',
];

/**
 * Where a patch came from: a batch's imagery, or a report drawn on a month's imagery — found by a town on
 * patrol (巡查发现) or reported by the public (群众举报). Migration 031.
 */
export const PATCH_SOURCES = ['imagery', 'patrol', 'complaint'] as const;
export type PatchSource = (typeof PATCH_SOURCES)[number];
