import { say } from '../i18n/say.ts';
import type { Db } from './db.ts';
import type { PatchDetailBody, PatchListItem } from '../api/responses.ts';
import { BadInputError, ForbiddenError } from '../core/errors.ts';
import { ActionBodies, type ActionBody, type PatchQuery } from '../workflow/actions.schema.ts';
import { HANDLERS, type ActionContext } from './actions.ts';
import { isoDay, scopedPatch, scopeTown } from './patch.row.ts';
import type { WorkflowEnv } from '../workflow/env.ts';
import {
  allowedMoves,
  planTransition,
  RULES,
  type Action,
  type PatchClass,
  type PatchStatus,
} from '../workflow/lifecycle.ts';
import { allOn, runSql } from './sql.ts';
import { queueMoveNotices } from './notify.ts';
import type { User } from './users.ts';
import { formatIssues } from '../core/issues.ts';

export async function listPatchesFor(
  db: Db,
  user: User,
  q: PatchQuery,
  opts: { withGeometry?: boolean } = {},
): Promise<{ total: number; next_after: string | null; patches: (PatchListItem & { geom?: unknown })[] }> {
  const bbox = q.bbox?.split(',').map(Number);
  const params = {
    scope_town: scopeTown(user),
    month: q.month ?? null,
    town: q.town ?? null,
    status: q.status ?? null,
    class: q.class ?? null,
    overdue: q.overdue ?? null,
    escalated: q.escalated ?? null,
    min_lon: bbox?.[0] ?? null,
    min_lat: bbox?.[1] ?? null,
    max_lon: bbox?.[2] ?? null,
    max_lat: bbox?.[3] ?? null,
    min_area_m2: q.min_area_m2 ?? null,
    max_area_m2: q.max_area_m2 ?? null,
    relation: q.relation ?? null,
    check: q.check ?? null,
    source: q.source ?? null,
    sort: q.sort,
    dir: q.dir,
    with_geom: opts.withGeometry ?? false,
    // one row more than the page: whether another page follows
    limit: q.limit + 1,
    offset: q.offset,
    after: q.after ?? null,
  };
  // the page and the total apart: the page walks an index as far as it shows, the count only counts
  const [fetched, [{ total }]] = await allOn<[(PatchListItem & { geom: unknown })[], { total: number }[]]>(db, [
    () => runSql<PatchListItem & { geom: unknown }>(db, 'workflow/list', params),
    () => runSql<{ total: number }>(db, 'workflow/list_count', params),
  ]);
  const rows = fetched.slice(0, q.limit);
  return {
    total,
    // where the next page starts, for keyset paging (code order only; null on the last page)
    next_after: q.sort === 'code' && fetched.length > q.limit ? rows[rows.length - 1].code : null,
    patches: rows.map(({ geom, ...r }) => (opts.withGeometry ? { ...r, geom } : r)),
  };
}

export async function patchDetail(db: Db, user: User, code: string): Promise<PatchDetailBody> {
  const p = await scopedPatch(db, user, code);
  // one statement after another when the detail is read inside an action's transaction
  const [history, observations, evidence, geom] = await allOn<[any[], any[], any[], any]>(db, [
    () =>
      db('patch_event as e')
        .where('e.patch_id', p.id)
        .orderBy('e.id')
        .select('e.at', 'e.actor', 'e.type', 'e.from_status', 'e.to_status', 'e.detail'),
    () =>
      db('patch_observation')
        .where({ patch_id: p.id })
        .orderBy('month')
        .select('month', 'kind', 'batch_id', db.raw('round(area_m2::numeric, 1)::float8 as area_m2'), 'mean_prob'),
    () =>
      db('evidence as ev')
        .join('app_user as u', 'u.id', 'ev.uploaded_by')
        .where({ 'ev.patch_id': p.id })
        .orderBy('ev.id')
        .select(
          'ev.id',
          'ev.filename',
          'ev.content_type',
          'ev.bytes',
          'ev.note',
          'ev.uploaded_at',
          'ev.taken_at',
          'ev.lon',
          'ev.lat',
          'ev.stage',
          'ev.flags',
          db.raw('round(ev.distance_m::numeric, 1)::float8 as distance_m'),
          db.raw('ev.stamped_as is not null as stamped'),
          db.raw("coalesce(nullif(u.display_name, ''), u.username) as author"),
        ),
    () =>
      db.raw(
        `select ST_AsGeoJSON(ST_Transform(geom, 4326), 7)::json as g,
              round(lon::numeric, 7)::float8 as lon,
              round(lat::numeric, 7)::float8 as lat
       from patch where id = ?`,
        [p.id],
      ),
  ]);
  const rebuiltOf = p.rebuilt_of ? (await db('patch').where({ id: p.rebuilt_of }).first('code'))?.code : null;
  return {
    code: p.code,
    month: p.month,
    baseline_month: p.baseline_month,
    status: p.status,
    class: p.class,
    district_code: p.district_code,
    town_code: p.town_code,
    town_name: p.town_name,
    grid_code: p.grid_code,
    area_m2: Number(p.area_m2),
    farmland_m2: Number(p.farmland_m2),
    ecological_m2: Number(p.ecological_m2),
    water_m2: Number(p.water_m2),
    mean_prob: p.mean_prob,
    model: p.model_name ? `${p.model_name} ${p.model_version}` : null,
    source: p.source,
    visible: p.visible ?? null,
    verification_result: p.verification_result,
    violation: p.violation,
    permit_ref: p.permit_ref,
    measure: p.measure,
    dismiss_reason: p.dismiss_reason,
    verify_due: isoDay(p.verify_due),
    rectify_due: isoDay(p.rectify_due),
    overdue_since: isoDay(p.overdue_since),
    escalated: p.escalated_at !== null,
    rebuilt_of: rebuiltOf,
    regularised: p.regularised ?? null,
    raw_area_m2: p.raw_area_m2 === null || p.raw_area_m2 === undefined ? null : Number(p.raw_area_m2),
    building_relation: p.building_relation,
    registered_building_m2: round1(p.registered_building_m2),
    extension_m2: round1(p.extension_m2),
    imagery_check: p.imagery_check ?? null,
    split_from: p.split_from ? (await db('patch').where({ id: p.split_from }).first('code'))?.code : null,
    merged_into: p.merged_into ? (await db('patch').where({ id: p.merged_into }).first('code'))?.code : null,
    allowed_actions: allowedMoves(p.status as PatchStatus, user.role).map((m) => m.action),
    geometry: geom.rows[0].g,
    lon: geom.rows[0].lon,
    lat: geom.rows[0].lat,
    history,
    observations,
    evidence,
  };
}

const round1 = (v: unknown) => Math.round(Number(v ?? 0) * 10) / 10;

/**
 * Apply one lifecycle action in a transaction: lock the patch (within the user's scope), check
 * role and state, let the action's handler (store/actions.ts) plan the change, update the patch and
 * append the history event with who, from, to and reason.
 */
export async function applyAction<A extends Action>(
  db: Db,
  env: WorkflowEnv,
  user: User,
  code: string,
  action: A,
  rawBody: unknown,
): Promise<PatchDetailBody> {
  // Outside the user's scope: 404 whatever the body says; a role that may never take the action: 403 before any body check.
  const visible = await scopedPatch(db, user, code);
  if (!RULES[action].roles.includes(user.role)) planTransition(code, visible.status, action, user.role);
  const body = parseActionBody(action, rawBody);
  const today = env.today();
  await db.transaction(async (trx) => {
    // A merge locks both patches, always in id order: two merges of one pair in opposite
    // directions then queue one behind the other instead of each holding one row and deadlocking.
    if (action === 'merge') {
      const other = (body as ActionBody<'merge'>).other;
      await trx('patch').whereIn('code', [code, other]).orderBy('id').forUpdate().select('id');
    }
    const p = await scopedPatch(trx, user, code, true);
    const moved = await actOnRow(trx, env, user, p, action, body, today);
    // the town's group (and the supervisors') hear of it from the outbox, written with the change
    if (moved !== 'repeat') await queueMoveNotices(trx, action, [Number(p.id)], user.username, today, reasonOf(body));
  });
  return patchDetail(db, user, code);
}

/** The reason a body gives (a send-back's, an escalation's), for the message that tells of it. */
export const reasonOf = (body: unknown): string | undefined =>
  typeof (body as { reason?: unknown }).reason === 'string' ? (body as { reason: string }).reason : undefined;

/** An action's request body checked against its schema; bad input naming the fields otherwise. */
export function parseActionBody<A extends Action>(action: A, rawBody: unknown): ActionBody<A> {
  const parsed = ActionBodies[action].safeParse(rawBody ?? {});
  if (!parsed.success)
    throw new BadInputError(
      'bad_body',
      say('action_body_invalid', { action, issues: formatIssues(parsed.error.issues, 'body') }),
      { issues: parsed.error.issues },
    );
  return parsed.data as ActionBody<A>;
}

/**
 * One action on one patch row, locked by the caller in its transaction: check role and state, let the
 * action's handler (store/actions.ts) plan the change, update the patch and append the history event
 * with who, from, to and reason. 'repeat': the request was applied before, nothing was done.
 */
export async function actOnRow<A extends Action>(
  trx: Db,
  env: WorkflowEnv,
  user: User,
  p: Record<string, any>,
  action: A,
  body: ActionBody<A>,
  today: string,
): Promise<{ from: PatchStatus; to: PatchStatus } | 'repeat'> {
  const from = p.status as PatchStatus;
  const to = planTransition(p.code, from, action, user.role, 'result' in body ? body.result : undefined);
  const ctx: ActionContext = {
    trx,
    env,
    user,
    code: p.code,
    patch: p,
    from,
    cls: p.class as PatchClass,
    today,
    update: { status: to },
    detail: { ...body },
  };
  const handler = HANDLERS[action] as (
    c: ActionContext,
    b: ActionBody<A>,
  ) => Promise<void | 'repeat'> | void | 'repeat';
  if ((await handler(ctx, body)) === 'repeat') return 'repeat';
  await trx('patch').where({ id: p.id }).update(ctx.update);
  await trx('patch_event').insert({
    patch_id: p.id,
    actor: user.username,
    type: action,
    from_status: from,
    to_status: to,
    detail: JSON.stringify(ctx.detail),
  });
  return { from, to };
}

export async function addNote(db: Db, user: User, code: string, text: unknown): Promise<PatchDetailBody> {
  const p = await scopedPatch(db, user, code);
  if (user.role === 'admin') throw new ForbiddenError(say('admin_no_notes'));
  if (typeof text !== 'string' || text.trim() === '' || text.length > 4000)
    throw new BadInputError('bad_body', say('note_length'));
  await db('patch_event').insert({
    patch_id: p.id,
    actor: user.username,
    type: 'note',
    from_status: p.status,
    to_status: p.status,
    detail: JSON.stringify({ text: text.trim() }),
  });
  return patchDetail(db, user, code);
}
