import type { Knex } from 'knex';
import { BadInputError, ConflictError, ForbiddenError, NotFoundError } from '../core/errors.ts';
import { ActionBodies, type PatchQuery } from '../workflow/actions.schema.ts';
import { addWorkingDays } from '../workflow/calendar.ts';
import type { WorkflowEnv } from '../workflow/env.ts';
import {
  allowedMoves,
  planTransition,
  RULES,
  type Action,
  type PatchClass,
  type PatchStatus,
} from '../workflow/lifecycle.ts';
import { runSql } from './sql.ts';
import type { User } from './users.ts';
import { asText } from '../core/text.ts';
import { formatIssues } from '../core/issues.ts';

/** The town a user is confined to, or null for city-wide roles. */
export const scopeTown = (u: User) => (u.role === 'town' ? u.townCode : null);

/** One patch as the user may see it; another town's patch is "not found", never "forbidden". */
export async function scopedPatch(db: Knex, user: User, code: string, lock = false): Promise<Record<string, any>> {
  const q = db('patch').where({ code });
  const town = scopeTown(user);
  if (town) q.andWhere({ town_code: town });
  if (lock) q.forUpdate();
  const row = await q.first();
  if (!row) throw new NotFoundError(`patch ${code} not found`);
  return row;
}

export async function listPatchesFor(
  db: Knex,
  user: User,
  q: PatchQuery,
  opts: { withGeometry?: boolean } = {},
): Promise<{ total: number; patches: Record<string, unknown>[] }> {
  const bbox = q.bbox?.split(',').map(Number);
  const rows = await runSql<Record<string, unknown>>(db, 'workflow/list', {
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
    min_area: q.min_area ?? null,
    max_area: q.max_area ?? null,
    sort: q.sort,
    dir: q.dir,
    with_geom: opts.withGeometry ?? false,
    limit: q.limit,
    offset: q.offset,
  });
  const total = rows.length ? Number(rows[0].total) : 0;
  return { total, patches: rows.map(({ total: _t, geom, ...r }) => (opts.withGeometry ? { ...r, geom } : r)) };
}

export async function patchDetail(db: Knex, user: User, code: string): Promise<Record<string, unknown>> {
  const p = await scopedPatch(db, user, code);
  const [history, observations, evidence, geom] = await Promise.all([
    db('patch_event as e')
      .where('e.patch_id', p.id)
      .orderBy('e.id')
      .select('e.at', 'e.actor', 'e.type', 'e.from_status', 'e.to_status', 'e.detail'),
    db('patch_observation')
      .where({ patch_id: p.id })
      .orderBy('month')
      .select('month', 'kind', 'batch_id', db.raw('round(area_m2::numeric, 1)::float8 as area_m2'), 'mean_prob'),
    db('evidence')
      .where({ patch_id: p.id })
      .orderBy('id')
      .select('id', 'filename', 'content_type', 'bytes', 'note', 'uploaded_at'),
    db.raw('select ST_AsGeoJSON(ST_Transform(geom, 4326), 7)::json as g from patch where id = ?', [p.id]),
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
    model: `${p.model_name} ${p.model_version}`,
    verification_result: p.verification_result,
    violation: p.violation,
    permit_ref: p.permit_ref,
    measure: p.measure,
    dismiss_reason: p.dismiss_reason,
    verify_due: date(p.verify_due),
    rectify_due: date(p.rectify_due),
    overdue_since: date(p.overdue_since),
    escalated: p.escalated_at !== null,
    rebuilt_of: rebuiltOf,
    regularised: p.regularised ?? null,
    raw_area_m2: p.raw_area_m2 === null || p.raw_area_m2 === undefined ? null : Number(p.raw_area_m2),
    split_from: p.split_from ? (await db('patch').where({ id: p.split_from }).first('code'))?.code : null,
    merged_into: p.merged_into ? (await db('patch').where({ id: p.merged_into }).first('code'))?.code : null,
    allowed_actions: allowedMoves(p.status as PatchStatus, user.role).map((m) => m.action),
    geometry: geom.rows[0].g,
    history,
    observations,
    evidence,
  };
}

function date(v: unknown): string | null {
  if (!v) return null;
  if (v instanceof Date)
    return `${v.getFullYear()}-${String(v.getMonth() + 1).padStart(2, '0')}-${String(v.getDate()).padStart(2, '0')}`;
  return asText(v).slice(0, 10);
}

/**
 * Apply one lifecycle action in a transaction: lock the patch (within the user's scope), check
 * role and state, update it, and append the history event with who, from, to and reason.
 */
export async function applyAction(
  db: Knex,
  env: WorkflowEnv,
  user: User,
  code: string,
  action: Action,
  rawBody: unknown,
): Promise<Record<string, unknown>> {
  // Outside the user's scope: 404 whatever the body says; a role that may never take the action: 403 before any body check.
  const visible = await scopedPatch(db, user, code);
  if (!RULES[action].roles.includes(user.role)) planTransition(code, visible.status, action, user.role);
  const parsed = ActionBodies[action].safeParse(rawBody ?? {});
  if (!parsed.success) throw new BadInputError('bad_body', `${action}: ${formatIssues(parsed.error.issues, 'body')}`);
  const body = parsed.data as Record<string, any>;
  const today = env.today();
  await db.transaction(async (trx) => {
    // A merge locks both patches, always in id order: two merges of one pair in opposite
    // directions then queue one behind the other instead of each holding one row and deadlocking.
    if (action === 'merge' && typeof body.other === 'string')
      await trx('patch').whereIn('code', [code, body.other]).orderBy('id').forUpdate().select('id');
    const p = await scopedPatch(trx, user, code, true);
    const from = p.status as PatchStatus;
    const to = planTransition(code, from, action, user.role, body.result);
    const cls = p.class as PatchClass;
    const update: Record<string, unknown> = { status: to };
    const detail: Record<string, unknown> = { ...body };
    switch (action) {
      case 'dispatch':
        update.dispatched_at = trx.fn.now();
        update.verify_due = addWorkingDays(env.calendar, today, env.policy.verifyDays[cls]);
        detail.verify_due = update.verify_due;
        break;
      case 'dismiss':
        update.dismiss_reason = body.reason;
        break;
      case 'verify':
        if (body.result === 'legal' && !body.permit_ref)
          throw new BadInputError(
            'bad_body',
            'verify: a legal result needs permit_ref (permit number or document reference)',
          );
        if (body.result === 'illegal' && !body.violation)
          throw new BadInputError('bad_body', 'verify: an illegal result needs violation (construction or land_use)');
        if (body.result === 'pre_existing' && !(await trx('evidence').where({ patch_id: p.id }).first())) {
          throw new BadInputError('bad_body', 'verify: pre_existing needs evidence; upload a photo or document first');
        }
        Object.assign(update, {
          verification_result: body.result,
          violation: body.violation ?? null,
          permit_ref: body.permit_ref ?? null,
          verified_at: trx.fn.now(),
          overdue_since: null,
        });
        break;
      case 'rectify': {
        // the policy sets the deadline; a town may set an earlier one, never a later one (only a
        // supervisor's extend moves it out)
        const latest = addWorkingDays(env.calendar, today, env.policy.rectifyDays[cls]);
        const due = body.due ?? latest;
        if (due < today)
          throw new BadInputError('bad_body', `rectify: due ${due} is before today ${today}`, { field: 'due' });
        if (due > latest)
          throw new BadInputError(
            'bad_body',
            `rectify: due ${due} is later than the policy allows for a ${cls} patch (${env.policy.rectifyDays[cls]} working days: ${latest}); ask a supervisor to extend`,
            { field: 'due' },
          );
        Object.assign(update, { measure: body.measure, rectify_due: due, overdue_since: null });
        detail.rectify_due = due;
        break;
      }
      case 'report_rectified': {
        const since = await trx('patch_event')
          .where({ patch_id: p.id, to_status: 'rectifying' })
          .whereIn('type', ['rectify', 'send_back'])
          .max({ at: 'at' });
        const ev = await trx('evidence').where({ patch_id: p.id }).andWhere('uploaded_at', '>=', since[0].at).first();
        if (!ev)
          throw new BadInputError(
            'bad_body',
            'report_rectified: upload evidence of the rectification (photo or document) first',
          );
        Object.assign(update, { rectified_at: trx.fn.now(), overdue_since: null });
        break;
      }
      case 'close':
        update.closed_at = trx.fn.now();
        break;
      case 'send_back':
        update.rectified_at = null;
        break;
      case 'correct_town': {
        const town = await trx('reference_feature').where({ kind: 'town', code: body.town_code }).first();
        if (!town) throw new BadInputError('bad_body', `correct_town: town ${body.town_code} is not in the town layer`);
        Object.assign(update, { town_code: town.code, town_name: town.name });
        detail.from_town = p.town_code;
        break;
      }
      case 'merge': {
        if (body.other === code) throw new BadInputError('bad_body', 'merge: a patch cannot be merged into itself');
        const other = await scopedPatch(trx, user, body.other, true);
        planTransition(other.code, other.status, 'merge', user.role);
        // each town answers for its own patches: one that straddles a boundary is corrected first, not merged across it
        if (other.town_code !== p.town_code)
          throw new BadInputError(
            'bad_body',
            `merge: ${other.code} lies in town ${other.town_code ?? '(none)'} and ${code} in ${p.town_code ?? '(none)'}; patches of different towns are not merged (correct_town first if one is wrong)`,
            { field: 'other' },
          );
        const prev = await trx.raw('select ST_AsGeoJSON(ST_Transform(geom, 4326), 7) as g from patch where id = ?', [
          p.id,
        ]);
        detail.previous_geometry = JSON.parse(prev.rows[0].g);
        await trx.raw(
          'update patch set geom = ST_Multi(ST_Union(geom, (select geom from patch where id = ?))) where id = ?',
          [other.id, p.id],
        );
        // what follows from the outline: true area, centroid, zone overlaps and the class they give
        await trx.raw(
          `update patch p set area_m2 = ST_Area(ST_Transform(p.geom, 4326)::geography), centroid = ST_PointOnSurface(p.geom),
                              farmland_m2 = z.f, ecological_m2 = z.e, water_m2 = z.w, class = patch_class(z.f, z.e, z.w)
                       from (select coalesce(zone_overlap_m2('farmland', geom), 0) f, coalesce(zone_overlap_m2('ecological', geom), 0) e, coalesce(zone_overlap_m2('water', geom), 0) w
                             from patch where id = ?) z
                       where p.id = ?`,
          [p.id, p.id],
        );
        await trx('patch').where({ id: other.id }).update({ status: 'merged', merged_into: p.id });
        await trx('patch_event').insert({
          patch_id: other.id,
          actor: user.username,
          type: 'merged',
          from_status: other.status,
          to_status: 'merged',
          detail: JSON.stringify({ into: code, reason: body.reason }),
        });
        break;
      }
      case 'split': {
        const children: { code: string; area_m2: number }[] = [];
        await lockPatchNumbers(trx, p.month);
        for (const part of body.parts) {
          const [{ max }] = await trx('patch')
            .where({ district_code: p.district_code, month: p.month })
            .max({ max: 'seq' });
          const rows = await runSql<{ id: string; code: string; area_m2: number }>(trx, 'workflow/split_part', {
            parent_id: p.id,
            part: JSON.stringify(part),
            seq: Number(max) + 1,
          });
          if (rows.length === 0 || rows[0].area_m2 < 1)
            throw new BadInputError(
              'bad_body',
              `split: part ${children.length + 1} does not cover any of patch ${code}`,
            );
          children.push({ code: rows[0].code, area_m2: Math.round(rows[0].area_m2 * 10) / 10 });
          await trx('patch_event').insert({
            patch_id: Number(rows[0].id),
            actor: user.username,
            type: 'split_from',
            from_status: null,
            to_status: from,
            detail: JSON.stringify({ parent: code, reason: body.reason }),
          });
        }
        const covered = children.reduce((s2, c) => s2 + c.area_m2, 0);
        if (covered > Number(p.area_m2) * 1.01)
          throw new BadInputError(
            'bad_body',
            `split: the parts overlap (${covered.toFixed(1)} m² of parts for a ${Number(p.area_m2).toFixed(1)} m² patch)`,
          );
        Object.assign(detail, {
          drawn: body.parts,
          parts: children,
          uncovered_m2: Math.max(0, Math.round((Number(p.area_m2) - covered) * 10) / 10),
        });
        delete detail.reason;
        detail.reason = body.reason;
        break;
      }
      case 'extend': {
        // a repeat of a request already applied (a double click, a retry after a lost answer) changes nothing;
        // the patch row is locked, so parallel repeats see the first one's event
        const done = await trx('patch_event')
          .where({ patch_id: p.id, type: 'extend' })
          .whereRaw("detail->>'request_key' = ?", [body.request_key])
          .first('id');
        if (done) return;
        const field = from === 'dispatched' ? 'verify_due' : 'rectify_due';
        const current = date(p[field]) ?? today;
        const next = addWorkingDays(env.calendar, current, body.working_days);
        update[field] = next;
        if (next >= today) update.overdue_since = null;
        Object.assign(detail, { field, from_due: current, to_due: next });
        break;
      }
      case 'escalate':
        if (p.escalated_at) throw new ConflictError(`patch ${code} is already listed for supervision`);
        update.escalated_at = trx.fn.now();
        break;
    }
    await trx('patch').where({ id: p.id }).update(update);
    await trx('patch_event').insert({
      patch_id: p.id,
      actor: user.username,
      type: action,
      from_status: from,
      to_status: to,
      detail: JSON.stringify(detail),
    });
  });
  return patchDetail(db, user, code);
}

/** A note on a patch, without changing it (office remarks, phone calls, site observations). */
export async function addNote(db: Knex, user: User, code: string, text: unknown): Promise<Record<string, unknown>> {
  const p = await scopedPatch(db, user, code);
  if (user.role === 'admin')
    throw new ForbiddenError('admins manage users; notes come from analysts, towns and supervisors');
  if (typeof text !== 'string' || text.trim() === '' || text.length > 4000)
    throw new BadInputError('bad_body', 'note: text must be 1–4000 characters');
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

/**
 * Patch numbers of a month are handed out as max(seq) + 1 by the batch emit and by splits; this
 * transaction-scoped lock makes the two take turns instead of colliding on the same number.
 */
export async function lockPatchNumbers(trx: Knex, month: string): Promise<void> {
  await trx.raw('select pg_advisory_xact_lock(hashtext(?))', [`tuban-patch-seq-${month}`]);
}
