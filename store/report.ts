import { say } from '../i18n/say.ts';
import type { Db } from './db.ts';
import { BadInputError, ConflictError, ForbiddenError } from '../core/errors.ts';
import { formatIssues } from '../core/issues.ts';
import { ReportBody } from '../workflow/actions.schema.ts';
import { verifyDue } from '../workflow/deadlines.ts';
import type { WorkflowEnv } from '../workflow/env.ts';
import type { PatchClass } from '../workflow/lifecycle.ts';
import { runSql } from './sql.ts';
import type { User } from './users.ts';
import { lockPatchNumbers } from './patch.row.ts';
import { queueMoveNotices } from './notify.ts';

/** The smallest and largest outline a report takes (m²): a shed, and a yard of 10 ha. */
export const REPORT_MIN_M2 = 1;
export const REPORT_MAX_M2 = 100_000;

interface Place {
  empty: boolean;
  area_m2: number;
  town_code: string | null;
  town_name: string | null;
  district_code: string | null;
  grid_code: string | null;
  grid_name: string | null;
  farmland_m2: number;
  ecological_m2: number;
  water_m2: number;
  building_relation: 'new' | 'extension' | 'on_building';
  registered_building_m2: number;
  /** m² of the outline outside the month's images, and outside the baseline month's. */
  month_outside_m2: number;
  baseline_outside_m2: number;
}

/** How the diff classes a change against the registered buildings (TUBAN_BUILDING_TOUCH_M, TUBAN_ON_BUILDING_SHARE). */
export interface ReportRules {
  touchM: number;
  onBuildingShare: number;
}

/**
 * A patch the imagery did not give — found by a town on patrol (巡查发现) or reported by the public
 * (群众举报) — drawn on a month's imagery and entered into the workflow: a town's own report is dispatched
 * to it at once with its verification deadline (it is already on the town's list), an analyst's waits in the
 * office to be dispatched like any other. No batch and no model made it; confirmed, a visible one is a
 * building the model missed, which training learns from and `tuban model evaluate` counts.
 * The same request key sent again returns the patch it made. Returns its code and whether it is new.
 */
export async function reportPatch(
  db: Db,
  env: WorkflowEnv,
  rules: ReportRules,
  user: User,
  raw: unknown,
): Promise<{ code: string; repeated: boolean }> {
  if (user.role !== 'town' && user.role !== 'analyst')
    throw new ForbiddenError(say('reported_role', { role: user.role }), { role: user.role });
  const parsed = ReportBody.safeParse(raw ?? {});
  if (!parsed.success)
    throw new BadInputError('bad_body', formatIssues(parsed.error.issues, 'body'), { issues: parsed.error.issues });
  const body = parsed.data;
  return db.transaction(async (trx) => {
    // numbering and the overlap check read every town's patches: the town's own scope (migration 020) would
    // hide the district's other numbers and a neighbour's patch across the border. Lifted here and put back
    // before returning (inside a request's audited transaction this is a savepoint, whose rollback puts it
    // back on a refusal); the outline's town is checked against the user's below.
    const scope = String((await trx.raw("select coalesce(current_setting('tuban.town', true), '') as t")).rows[0].t);
    await trx.raw("select set_config('tuban.town', '', true)");
    await trx.raw('select pg_advisory_xact_lock(hashtext(?))', [`tuban-report-${user.username}`]);
    const made = await reportIn(trx, env, rules, user, body);
    await trx.raw("select set_config('tuban.town', ?, true)", [scope]);
    return made;
  });
}

/** Within the transaction, the town scope lifted and the user's reports taking turns. */
async function reportIn(
  trx: Db,
  env: WorkflowEnv,
  rules: ReportRules,
  user: User,
  body: ReportBody,
): Promise<{ code: string; repeated: boolean }> {
  const earlier = await trx('patch').where({ reported_by: user.username, report_key: body.request_key }).first('code');
  if (earlier) return { code: earlier.code as string, repeated: true };

  const batches = trx('batch').whereIn('status', ['completed', 'completed_with_failures']);
  const latest = await batches.clone().max({ month: 'month' });
  const month = body.month ?? latest[0]?.month;
  if (!month) throw new BadInputError('bad_field', say('reported_no_batches'), { field: 'month' });
  // a town reports on the latest imagery: an earlier month's ranking has been published (analysts may
  // enter a report on an earlier month, a complaint about what that imagery already showed)
  if (user.role === 'town' && month !== latest[0].month)
    throw new BadInputError('bad_field', say('reported_town_month', { month, latest: latest[0].month }), {
      field: 'month',
    });
  const batch = await batches.clone().where({ month }).orderBy('id', 'desc').first('baseline_month');
  if (!batch)
    throw new BadInputError('bad_field', say('reported_no_batch', { month, latest: latest[0]?.month ?? '-' }), {
      field: 'month',
    });
  const outline = JSON.stringify(body.outline);
  const [place] = await runSql<Place>(trx, 'workflow/report_place', {
    outline,
    month,
    baseline: batch.baseline_month,
    touch_m: rules.touchM,
    on_building_share: rules.onBuildingShare,
  });
  const bad = (key: Parameters<typeof say>[0], args: Record<string, unknown> = {}) =>
    new BadInputError('bad_field', say(key, args as never), { field: 'outline' });
  if (place.empty) throw bad('reported_empty');
  const area = Math.round(place.area_m2 * 10) / 10;
  if (area < REPORT_MIN_M2) throw bad('reported_too_small', { area, min: REPORT_MIN_M2 });
  if (area > REPORT_MAX_M2) throw bad('reported_too_large', { area, max: REPORT_MAX_M2 });
  if (!place.town_code || !place.district_code) throw bad('reported_outside_towns');
  if (user.role === 'town' && place.town_code !== user.townCode)
    throw new ForbiddenError(
      say('reported_other_town', { town: place.town_name ?? place.town_code, mine: user.townCode }),
      {
        field: 'outline',
      },
    );
  // seen on the imagery: both months' images hold it (a sliver of half a square metre, or 1 %, aside)
  const slack = Math.max(0.5, 0.01 * place.area_m2);
  if (body.visible && place.month_outside_m2 > slack) throw bad('reported_not_covered', { month });
  if (body.visible && place.baseline_outside_m2 > slack)
    throw bad('reported_not_covered', { month: batch.baseline_month });

  // the district's numbers, and what else is being made there (a batch's emit, another report of the same
  // ground), take turns from here: the open patches it overlaps are read under the lock
  await lockPatchNumbers(trx, month, place.district_code);
  const open = await runSql<{ code: string; town_code: string | null }>(trx, 'workflow/report_open', { outline });
  if (open.length) {
    // a town user is told the codes of their own town's patches only
    const shown = open.filter((p) => user.role !== 'town' || p.town_code === user.townCode);
    throw new ConflictError(
      shown.length
        ? say('reported_overlaps', { codes: shown.map((p) => p.code).join(', ') })
        : say('reported_overlaps_neighbour'),
      { field: 'outline', patches: shown.map((p) => p.code) },
    );
  }

  const [{ max }] = await trx('patch').where({ district_code: place.district_code, month }).max({ max: 'seq' });
  const seq = Number(max ?? 0) + 1;
  const [{ code }] = await trx
    .raw('select patch_code(?, ?, ?) as code', [place.district_code, month, seq])
    .then((r) => r.rows);
  const cls = (
    await trx.raw('select patch_class(?, ?, ?) as c', [place.farmland_m2, place.ecological_m2, place.water_m2])
  ).rows[0].c as PatchClass;
  const status = user.role === 'town' ? 'dispatched' : 'detected';
  const due = status === 'dispatched' ? verifyDue(env.calendar, env.policy, cls, env.today()) : null;
  const [row] = await runSql<{ id: string; code: string }>(trx, 'workflow/report_insert', {
    outline,
    code,
    seq,
    month,
    baseline: batch.baseline_month,
    district_code: place.district_code,
    town_code: place.town_code,
    town_name: place.town_name,
    grid_code: place.grid_code,
    grid_name: place.grid_name,
    area_m2: place.area_m2,
    farmland_m2: place.farmland_m2,
    ecological_m2: place.ecological_m2,
    water_m2: place.water_m2,
    building_relation: place.building_relation,
    registered_building_m2: place.registered_building_m2,
    source: body.source,
    visible: body.visible,
    status,
    verify_due: due,
    reported_by: user.username,
    report_key: body.request_key,
  });
  await trx('patch_event').insert({
    patch_id: Number(row.id),
    actor: user.username,
    type: 'reported',
    from_status: null,
    to_status: status,
    detail: JSON.stringify({
      source: body.source,
      visible: body.visible,
      month,
      note: body.note,
      request_key: body.request_key,
      ...(due ? { verify_due: due } : {}),
    }),
  });
  // a town's own report is on its list with a deadline running: its group hears of it as of a dispatch
  if (status === 'dispatched') await queueMoveNotices(trx, 'dispatch', [Number(row.id)], user.username, env.today());
  return { code: row.code, repeated: false };
}
