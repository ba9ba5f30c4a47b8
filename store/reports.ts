import { townScope, type Db } from './db.ts';
import type {
  BoardBody,
  MonthlyReportBody,
  TodoBody,
  TodoItem,
  TownCounts,
  TownMonth,
  TownYear,
  YearFigures,
  YearlyReportBody,
} from '../api/reports.ts';
import { DEFAULT_ACCOUNTABILITY, referralReasons, type AccountabilityRule } from '../workflow/accountability.ts';
import { previousMonth } from './batch.ts';
import { addMonths } from '../core/month.ts';
import { allOn, runSql } from './sql.ts';
import type { User } from './users.ts';
import type { WorkflowEnv } from '../workflow/env.ts';
import { scopeTown } from './patch.row.ts';
import { addWorkingDays, isProvisional, workingDaysLeft } from '../workflow/calendar.ts';
import { allowedMoves, FORWARD_ACTIONS, statesWaitingOn, type PatchStatus } from '../workflow/lifecycle.ts';

/**
 * The bureau's published figures — every town's counts, no patch's details — read outside a town user's
 * scope (migration 020's row-level security), which would leave every other town at zero. `db` is the pool:
 * a transaction's connection keeps the scope it was taken with.
 */
const published = <T>(work: () => PromiseLike<T>): Promise<T> =>
  townScope.run({ town: null }, async () => await work());

/**
 * The month's town ranking as the bureau publishes it: every town for every role (a town user sees
 * the others' figures, not their patches), the city row summing all towns.
 */
export async function monthlyTownReport(db: Db, month: string): Promise<MonthlyReportBody> {
  const towns = await published(() =>
    runSql<TownMonth>(db, 'workflow/monthly_report', {
      month,
      prev_month: previousMonth(month),
    }),
  );
  const ranked: MonthlyReportBody['towns'] = towns.map((t, i) => ({
    rank: i + 1,
    ...t,
    change_from_previous: t.new_patches - t.prev_new_patches,
  }));
  const sum = (k: keyof typeof TownCounts) => ranked.reduce((s, t) => s + Number(t[k] ?? 0), 0);
  const city = {
    new_patches: sum('new_patches'),
    new_area_m2: Math.round(sum('new_area_m2') * 10) / 10,
    verified: sum('verified'),
    illegal: sum('illegal'),
    rectified: sum('rectified'),
    overdue: sum('overdue'),
    escalated: sum('escalated'),
    unverified: sum('unverified'),
    unverified_overdue: sum('unverified_overdue'),
    new_extension: sum('new_extension'),
    new_on_building: sum('new_on_building'),
    prev_new_patches: sum('prev_new_patches'),
    zero_growth_towns: ranked.filter((t) => t.zero_growth).length,
    towns: ranked.length,
  };
  return {
    month,
    previous_month: previousMonth(month),
    city: { ...city, change_from_previous: city.new_patches - city.prev_new_patches },
    towns: ranked,
  };
}

/** Square metres in 亩 (1 亩 = 10,000/15 m²), to 0.01. */
const mu = (m2: number) => Math.round((m2 * 15) / 100) / 100;
const r1 = (v: number) => Math.round(v * 10) / 10;

/**
 * The yearly register (年度台账): every town's year and the city's — the months' counts summed (a patch
 * belongs to the month it was found in), areas in m² and 亩, 处置 and 腾出土地, months of zero growth,
 * and the towns the bureau's 问责 rule refers, with the criteria each reached.
 */
export async function yearlyTownReport(
  db: Db,
  year: string,
  rule: AccountabilityRule = DEFAULT_ACCOUNTABILITY,
): Promise<YearlyReportBody> {
  const rows = await published(() => runSql<Record<string, number | string>>(db, 'workflow/yearly_report', { year }));
  const months = (
    await published(() =>
      db.raw(
        `select month from batch where month like ? and status in ('completed', 'completed_with_failures')
         union select distinct month from patch where month like ? order by 1`,
        [`${year}-%`, `${year}-%`],
      ),
    )
  ).rows.map((r: { month: string }) => r.month) as string[];
  const figures = (r: Record<string, number | string>) => {
    const n = (k: string) => Number(r[k] ?? 0);
    return {
      new_patches: n('new_patches'),
      new_area_m2: r1(n('new_area_m2')),
      verified: n('verified'),
      verified_pct: n('to_verify') === 0 ? null : r1((100 * n('verified')) / n('to_verify')),
      unverified: n('unverified'),
      unverified_overdue: n('unverified_overdue'),
      illegal: n('illegal'),
      illegal_m2: r1(n('illegal_m2')),
      illegal_mu: mu(n('illegal_m2')),
      rectified: n('rectified'),
      rectified_m2: r1(n('rectified_m2')),
      rectified_mu: mu(n('rectified_m2')),
      freed_m2: r1(n('freed_m2')),
      freed_mu: mu(n('freed_m2')),
      overdue: n('overdue'),
      overdue_unrectified: n('overdue_unrectified'),
      escalated: n('escalated'),
      escalations: n('escalations'),
      illegal_closed: n('illegal_closed'),
    };
  };
  const towns: TownYear[] = rows.map((r) => {
    const f = figures(r);
    const facts = {
      overdue_unrectified: f.overdue_unrectified,
      escalations: f.escalations,
      months: Number(r.months),
      zero_growth_months: Number(r.zero_growth_months),
    };
    const reasons = referralReasons(rule, facts);
    return {
      ...f,
      town_code: String(r.town_code),
      town_name: String(r.town_name),
      months: facts.months,
      zero_growth_months: facts.zero_growth_months,
      zero_growth_year: facts.months > 0 && facts.zero_growth_months === facts.months,
      referred: reasons.length > 0,
      reasons,
    };
  });
  // the city: the towns' raw sums, areas summed before rounding
  const sum = (k: string) => rows.reduce((s, r) => s + Number(r[k] ?? 0), 0);
  const raw = Object.fromEntries(
    [
      'new_patches',
      'new_area_m2',
      'verified',
      'to_verify',
      'unverified',
      'unverified_overdue',
      'illegal',
      'illegal_m2',
      'rectified',
      'rectified_m2',
      'freed_m2',
      'overdue',
      'overdue_unrectified',
      'escalated',
      'escalations',
      'illegal_closed',
    ].map((k) => [k, sum(k)]),
  );
  const city: YearlyReportBody['city'] = {
    ...(figures(raw) satisfies { [K in keyof typeof YearFigures]: unknown }),
    towns: towns.length,
    zero_growth_towns: towns.filter((t) => t.zero_growth_year).length,
    referred_towns: towns.filter((t) => t.referred).length,
  };
  return { year, months, rule, city, towns };
}

/** The most urgent cases a board lists per town and list; the rest are counted (the map lists them all). */
const BOARD_LIST_MAX = 20;

export async function supervisorBoard(
  db: Db,
  env: WorkflowEnv,
  user: User,
  days: number,
  perList = BOARD_LIST_MAX,
): Promise<BoardBody> {
  const today = env.today();
  const dueBy = addWorkingDays(env.calendar, today, days);
  const rows = await runSql<Record<string, any>>(db, 'workflow/board', {
    today,
    due_by: dueBy,
    scope_town: scopeTown(user),
    per_list: perList,
  });
  const looked = await runSql<Record<string, any>>(db, 'workflow/board_lookback', { scope_town: scopeTown(user) });
  type Town = BoardBody['towns'][number];
  type Item = Town['due_soon'][number];
  const byTown = new Map<string, Town>();
  const townOf = (r: Record<string, any>): Town => {
    const t = byTown.get(r.town_code) ?? {
      town_code: r.town_code,
      town_name: r.town_name,
      due_soon: [] as Item[],
      overdue: [] as Item[],
      escalated: [] as Item[],
      due_soon_total: 0,
      overdue_total: 0,
      escalated_total: 0,
      reported_standing: [],
      gone_unreported: [],
    };
    byTown.set(r.town_code, t);
    return t;
  };
  for (const r of rows) {
    const t = townOf(r);
    const item = {
      code: r.code,
      status: r.status,
      class: r.class,
      deadline: r.deadline,
      due: r.due,
      due_provisional: isProvisional(env.calendar, r.due),
      days_left: workingDaysLeft(env.calendar, today, r.due),
    };
    const list = r.list as 'escalated' | 'overdue' | 'due_soon';
    t[list].push(item);
    t[`${list}_total`] = r.in_list;
  }
  for (const r of looked) {
    const item = { code: r.code, status: r.status, measure: r.measure, imagery_check: r.imagery_check };
    townOf(r)[r.imagery_check.result === 'gone' ? 'gone_unreported' : 'reported_standing'].push(item);
  }
  const towns = [...byTown.values()].sort((a, b) => String(a.town_code).localeCompare(String(b.town_code)));
  return { today, due_by: dueBy, working_days: days, towns };
}

/**
 * What waits on `user` (their town's, for a town user): patches in the states their role moves on,
 * across months, one page at a time (an analyst's can be tens of thousands), with how many wait in
 * all and how many of those are overdue.
 */
export async function todoList(
  db: Db,
  env: WorkflowEnv,
  user: User,
  page: { limit: number; offset: number; after?: string } = { limit: 200, offset: 0 },
): Promise<TodoBody> {
  const today = env.today();
  const states = statesWaitingOn(user.role);
  // the cursor: the last patch of the page before, as `due|month|code` (due empty when it has none)
  const [afterDue, afterMonth, afterCode] = page.after ? page.after.split('|') : [null, null, null];
  const params = {
    states: `{${states.join(',')}}`,
    scope_town: scopeTown(user),
    today,
    offset: page.offset,
    // one more than the page, to know whether another follows
    limit: page.limit + 1,
    after_due: afterDue || null,
    after_month: afterMonth,
    after_code: afterCode,
  };
  // days_left and actions are added below
  const [fetched, [counts]] = await allOn<[TodoItem[], { total: number; overdue: number }[]]>(db, [
    () => runSql<TodoItem>(db, 'workflow/todo', params),
    () => runSql<{ total: number; overdue: number }>(db, 'workflow/todo_count', params),
  ]);
  const rows = fetched.slice(0, page.limit);
  const last = rows.at(-1);
  return {
    today,
    role: user.role,
    states,
    total: counts.total,
    overdue: counts.overdue,
    limit: page.limit,
    offset: page.offset,
    next_after: fetched.length > page.limit && last ? `${last.due ?? ''}|${last.month}|${last.code}` : null,
    patches: rows.map((r) => ({
      ...r,
      due_provisional: isProvisional(env.calendar, r.due),
      days_left: r.due ? workingDaysLeft(env.calendar, today, r.due) : null,
      actions: allowedMoves(r.status as PatchStatus, user.role)
        .map((m) => m.action)
        .filter((a) => FORWARD_ACTIONS.includes(a)),
    })),
  };
}

/** New patches per month over the last `months` months (town-scoped), for the board's chart. */
export async function patchTrend(
  db: Db,
  user: User,
  lastMonth: string,
  months = 12,
): Promise<{ month: string; new_patches: number; new_area_m2: number; illegal: number }[]> {
  const since = addMonths(lastMonth, -(months - 1));
  const rows = await runSql<{ month: string; new_patches: number; new_area_m2: number; illegal: number }>(
    db,
    'workflow/trend',
    { since, scope_town: scopeTown(user) },
  );
  const byMonth = new Map(rows.map((r) => [r.month, r]));
  const out = [];
  for (let i = 0; i < months; i++) {
    const key = addMonths(since, i);
    if (key > lastMonth) break;
    out.push(byMonth.get(key) ?? { month: key, new_patches: 0, new_area_m2: 0, illegal: 0 });
  }
  return out;
}
