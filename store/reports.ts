import type { Knex } from 'knex';
import type { BoardBody, MonthlyReportBody, TodoBody, TodoItem, TownCounts, TownMonth } from '../api/reports.ts';
import { previousMonth } from './batch.ts';
import { runSql } from './sql.ts';
import type { User } from './users.ts';
import type { WorkflowEnv } from '../workflow/env.ts';
import { scopeTown } from './patch.row.ts';
import { addWorkingDays, isProvisional, workingDaysLeft } from '../workflow/calendar.ts';
import { allowedMoves, FORWARD_ACTIONS, statesWaitingOn, type PatchStatus } from '../workflow/lifecycle.ts';

/**
 * The month's town ranking as the bureau publishes it: every town for every role (a town user sees
 * the others' figures, not their patches), the city row summing all towns.
 */
export async function monthlyTownReport(db: Knex, month: string): Promise<MonthlyReportBody> {
  const towns = await runSql<TownMonth>(db, 'workflow/monthly_report', {
    month,
    prev_month: previousMonth(month),
  });
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

export async function supervisorBoard(db: Knex, env: WorkflowEnv, user: User, days: number): Promise<BoardBody> {
  const today = env.today();
  const dueBy = addWorkingDays(env.calendar, today, days);
  const rows = await runSql<Record<string, any>>(db, 'workflow/board', {
    today,
    due_by: dueBy,
    scope_town: scopeTown(user),
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
    if (r.escalated) t.escalated.push(item);
    else if (r.overdue) t.overdue.push(item);
    else t.due_soon.push(item);
  }
  for (const r of looked) {
    const item = { code: r.code, status: r.status, measure: r.measure, imagery_check: r.imagery_check };
    townOf(r)[r.imagery_check.result === 'gone' ? 'gone_unreported' : 'reported_standing'].push(item);
  }
  const towns = [...byTown.values()].sort((a, b) => String(a.town_code).localeCompare(String(b.town_code)));
  return { today, due_by: dueBy, working_days: days, towns };
}

/** What waits on `user` (their town's, for a town user): patches in the states their role moves on, across months. */
export async function todoList(db: Knex, env: WorkflowEnv, user: User): Promise<TodoBody> {
  const today = env.today();
  const states = statesWaitingOn(user.role);
  // days_left and actions are added below
  const rows = await runSql<TodoItem>(db, 'workflow/todo', {
    states: JSON.stringify(states),
    scope_town: scopeTown(user),
  });
  return {
    today,
    role: user.role,
    states,
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
