import { say } from '../i18n/say.ts';
import type { Db } from './db.ts';
import { BadInputError, ConflictError } from '../core/errors.ts';
import type { ActionBody, ActionBodies } from '../workflow/actions.schema.ts';
import { addWorkingDays } from '../workflow/calendar.ts';
import { DEFAULT_EVIDENCE_RULES, type WorkflowEnv } from '../workflow/env.ts';
import { planTransition, type Action, type PatchClass, type PatchStatus } from '../workflow/lifecycle.ts';
import { rectifyDue, verifyDue } from '../workflow/deadlines.ts';
import { runSql } from './sql.ts';
import type { User } from './users.ts';
import { isoDay, lockPatchNumbers, scopedPatch } from './patch.row.ts';

/** What a handler works on: the locked patch row, the state it leaves, and the change it plans. */
export interface ActionContext {
  trx: Db;
  env: WorkflowEnv;
  user: User;
  code: string;
  /** The patch row, locked for the transaction. */
  patch: Record<string, any>;
  from: PatchStatus;
  cls: PatchClass;
  today: string;
  /** Columns of the patch row to set (status is set already). */
  update: Record<string, unknown>;
  /** The history event's detail (the body is in it already). */
  detail: Record<string, unknown>;
}

/** A handler plans the change into ctx.update and ctx.detail; 'repeat' means the request was applied before. */
type Handler<A extends Action> = (
  ctx: ActionContext,
  body: ActionBody<A>,
) => Promise<void | 'repeat'> | void | 'repeat';

// ---- one handler per action ----

const dispatch: Handler<'dispatch'> = (c) => {
  c.update.dispatched_at = c.trx.fn.now();
  c.update.verify_due = c.detail.verify_due = verifyDue(c.env.calendar, c.env.policy, c.cls, c.today);
};

const dismiss: Handler<'dismiss'> = (c, body) => {
  c.update.dismiss_reason = body.reason;
};

/** Photos (not documents) of a stage on a patch, uploaded at or after `since` when given. */
async function photosOf(c: ActionContext, stage: 'verify' | 'rectify', since?: unknown): Promise<number> {
  const [{ n }] = await c
    .trx('evidence')
    .where({ patch_id: c.patch.id, stage })
    .andWhereLike('content_type', 'image/%')
    .modify((q) => {
      if (since) q.andWhere('uploaded_at', '>=', since);
    })
    .count({ n: '*' });
  return Number(n);
}

const verify: Handler<'verify'> = async (c, body) => {
  if (body.result === 'pre_existing' && !(await c.trx('evidence').where({ patch_id: c.patch.id }).first()))
    throw new BadInputError('bad_body', say('pre_existing_needs_evidence'));
  // a verdict of 违法 stands on photos of the site (TUBAN_EVIDENCE_MIN_VERIFY_PHOTOS)
  const min = (c.env.evidence ?? DEFAULT_EVIDENCE_RULES).minVerifyPhotos;
  if (body.result === 'illegal' && min > 0) {
    const have = await photosOf(c, 'verify');
    if (have < min)
      throw new BadInputError('bad_body', say('verify_needs_photos', { min, have }), { field: 'evidence' });
  }
  Object.assign(c.update, {
    verification_result: body.result,
    violation: body.result === 'illegal' ? body.violation : null,
    permit_ref: body.result === 'legal' ? body.permit_ref : null,
    verified_at: c.trx.fn.now(),
    overdue_since: null,
  });
};

const rectify: Handler<'rectify'> = (c, body) => {
  const due = rectifyDue(c.env.calendar, c.env.policy, c.cls, c.today, body.due);
  Object.assign(c.update, { measure: body.measure, rectify_due: due, overdue_since: null });
  c.detail.rectify_due = due;
};

const reportRectified: Handler<'report_rectified'> = async (c) => {
  // evidence uploaded since the patch last went to rectifying
  const since = await c
    .trx('patch_event')
    .where({ patch_id: c.patch.id, to_status: 'rectifying' })
    .whereIn('type', ['rectify', 'send_back'])
    .max({ at: 'at' });
  // photos of the result (TUBAN_EVIDENCE_MIN_RECTIFY_PHOTOS); with none required, any file will do
  // (a fine's receipt for 罚款补办)
  const min = (c.env.evidence ?? DEFAULT_EVIDENCE_RULES).minRectifyPhotos;
  if (min > 0) {
    const have = await photosOf(c, 'rectify', since[0].at);
    if (have < min)
      throw new BadInputError('bad_body', say('rectified_needs_photos', { min, have }), { field: 'evidence' });
  } else {
    const ev = await c
      .trx('evidence')
      .where({ patch_id: c.patch.id })
      .andWhere('uploaded_at', '>=', since[0].at)
      .first();
    if (!ev) throw new BadInputError('bad_body', say('rectified_needs_evidence'));
  }
  Object.assign(c.update, { rectified_at: c.trx.fn.now(), overdue_since: null });
};

const close: Handler<'close'> = (c, body) => {
  // 回头看: a demolition the town reported that the latest imagery still shows standing is closed
  // only with a reason, kept in the history with the check it overrides
  const check = c.patch.imagery_check as { month: string; result: string } | null;
  if (check?.result === 'standing' && !body.reason?.trim())
    throw new BadInputError('bad_body', say('close_standing_needs_reason', { code: c.code, month: check.month }), {
      field: 'reason',
    });
  if (check) c.detail.imagery_check = check;
  c.update.closed_at = c.trx.fn.now();
};

const sendBack: Handler<'send_back'> = (c) => {
  c.update.rectified_at = null;
};

const correctTown: Handler<'correct_town'> = async (c, body) => {
  if (body.town_code === c.patch.town_code)
    throw new BadInputError('bad_body', say('correct_town_same', { code: c.code, town: body.town_code }), {
      field: 'town_code',
    });
  const town = await c.trx('reference_feature').where({ kind: 'town', code: body.town_code }).first();
  if (!town) throw new BadInputError('bad_body', say('correct_town_unknown', { town: body.town_code }));
  Object.assign(c.update, { town_code: town.code, town_name: town.name });
  c.detail.from_town = c.patch.town_code;
};

const merge: Handler<'merge'> = async (c, body) => {
  const { trx, patch: p, code } = c;
  if (body.other === code) throw new BadInputError('bad_body', say('merge_self'));
  const other = await scopedRow(c, body.other);
  planTransition(other.code, other.status, 'merge', c.user.role);
  // each town answers for its own patches: one that straddles a boundary is corrected first, not merged across it
  if (other.town_code !== p.town_code)
    throw new BadInputError(
      'bad_body',
      say('merge_other_town', { other: other.code, other_town: other.town_code, code, town: p.town_code }),
      { field: 'other' },
    );
  const prev = await trx.raw('select ST_AsGeoJSON(ST_Transform(geom, 4326), 7) as g from patch where id = ?', [p.id]);
  c.detail.previous_geometry = JSON.parse(prev.rows[0].g);
  await trx.raw(
    'update patch set geom = ST_Multi(ST_Union(geom, (select geom from patch where id = ?))) where id = ?',
    [other.id, p.id],
  );
  // what follows from the outline: true area, centroid, zone overlaps and the class they give, and the
  // overlap with registered buildings (on or against one if either part was)
  const relation = p.building_relation === 'new' ? other.building_relation : p.building_relation;
  await trx.raw(
    `update patch p set area_m2 = z.a, centroid = ST_PointOnSurface(p.geom),
                        farmland_m2 = z.f, ecological_m2 = z.e, water_m2 = z.w, class = patch_class(z.f, z.e, z.w),
                        building_relation = ?, registered_building_m2 = z.b, extension_m2 = greatest(z.a - z.b, 0)
                 from (select ST_Area(ST_Transform(geom, 4326)::geography) a,
                              coalesce(zone_overlap_m2('farmland', geom), 0) f, coalesce(zone_overlap_m2('ecological', geom), 0) e, coalesce(zone_overlap_m2('water', geom), 0) w,
                              case when ? = 'new' then 0 else coalesce(zone_overlap_m2('building', geom), 0) end b
                       from patch where id = ?) z
                 where p.id = ?`,
    [relation, relation, p.id, p.id],
  );
  await trx('patch').where({ id: other.id }).update({ status: 'merged', merged_into: p.id });
  await trx('patch_event').insert({
    patch_id: other.id,
    actor: c.user.username,
    type: 'merged',
    from_status: other.status,
    to_status: 'merged',
    detail: JSON.stringify({ into: code, reason: body.reason }),
  });
};

const split: Handler<'split'> = async (c, body) => {
  const { trx, patch: p, code } = c;
  const children: { code: string; area_m2: number }[] = [];
  await lockPatchNumbers(trx, p.month, p.district_code);
  for (const part of body.parts) {
    const [{ max }] = await trx('patch').where({ district_code: p.district_code, month: p.month }).max({ max: 'seq' });
    const rows = await runSql<{ id: string; code: string; area_m2: number }>(trx, 'workflow/split_part', {
      parent_id: p.id,
      part: JSON.stringify(part),
      seq: Number(max) + 1,
    });
    if (rows.length === 0 || rows[0].area_m2 < 1)
      throw new BadInputError('bad_body', say('split_part_empty', { part: children.length + 1, code }));
    children.push({ code: rows[0].code, area_m2: Math.round(rows[0].area_m2 * 10) / 10 });
    await trx('patch_event').insert({
      patch_id: Number(rows[0].id),
      actor: c.user.username,
      type: 'split_from',
      from_status: null,
      to_status: c.from,
      detail: JSON.stringify({ parent: code, reason: body.reason }),
    });
  }
  const covered = children.reduce((s, ch) => s + ch.area_m2, 0);
  if (covered > Number(p.area_m2) * 1.01)
    throw new BadInputError(
      'bad_body',
      say('split_overlap', { parts_m2: covered.toFixed(1), patch_m2: Number(p.area_m2).toFixed(1) }),
    );
  delete c.detail.parts;
  delete c.detail.reason;
  Object.assign(c.detail, {
    drawn: body.parts,
    parts: children,
    uncovered_m2: Math.max(0, Math.round((Number(p.area_m2) - covered) * 10) / 10),
    reason: body.reason,
  });
};

const extend: Handler<'extend'> = async (c, body) => {
  // a repeat of a request already applied (a double click, a retry after a lost answer) changes nothing;
  // the patch row is locked, so parallel repeats see the first one's event
  const done = await c
    .trx('patch_event')
    .where({ patch_id: c.patch.id, type: 'extend' })
    .whereRaw("detail->>'request_key' = ?", [body.request_key])
    .first('id');
  if (done) return 'repeat';
  const field = c.from === 'dispatched' ? 'verify_due' : 'rectify_due';
  const current = isoDay(c.patch[field]) ?? c.today;
  const next = addWorkingDays(c.env.calendar, current, body.working_days);
  c.update[field] = next;
  if (next >= c.today) c.update.overdue_since = null;
  Object.assign(c.detail, { field, from_due: current, to_due: next });
  return undefined;
};

const escalate: Handler<'escalate'> = (c) => {
  if (c.patch.escalated_at) throw new ConflictError(say('already_escalated', { code: c.code }));
  c.update.escalated_at = c.trx.fn.now();
};

/** Every action's handler: the table the type checker holds complete. */
export const HANDLERS: { [A in keyof typeof ActionBodies]: Handler<A> } = {
  dispatch,
  dismiss,
  verify,
  rectify,
  report_rectified: reportRectified,
  close,
  send_back: sendBack,
  correct_town: correctTown,
  merge,
  split,
  extend,
  escalate,
};

// ---- helpers ----

/** Another patch in the user's scope, locked (merge). */
const scopedRow = (c: ActionContext, code: string) => scopedPatch(c.trx, c.user, code, true);
