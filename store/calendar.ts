import type { Db } from './db.ts';
import { say } from '../i18n/say.ts';
import { BadInputError } from '../core/errors.ts';
import {
  addWorkingDays,
  coveredUntil,
  withYears,
  workingDaysBetween,
  type CalendarYear,
  type WorkCalendar,
} from '../workflow/calendar.ts';
import { workflowEnv, type WorkflowEnv } from '../workflow/env.ts';
import type { Config } from '../config/env.ts';
import { runSql } from './sql.ts';

/** The years added to the calendar in the database (calendar_year), oldest first. */
export async function calendarYears(db: Db): Promise<CalendarYear[]> {
  const rows = await db('calendar_year')
    .orderBy('year')
    .select(
      'year',
      'source',
      db.raw(`array(select to_char(d, 'YYYY-MM-DD') from unnest(holidays) d order by d) as holidays`),
      db.raw(`array(select to_char(d, 'YYYY-MM-DD') from unnest(workdays) d order by d) as workdays`),
    );
  return rows.map((r) => ({ year: Number(r.year), source: r.source, holidays: r.holidays, workdays: r.workdays }));
}

/**
 * The calendar every deadline counts on: the file's (env.baseCalendar, else env.calendar as loaded) with
 * the database's years over it, put into env.calendar. Servers and workers call it at start and now and
 * then, so a year added anywhere reaches them all.
 */
export async function refreshCalendar(db: Db, env: WorkflowEnv): Promise<WorkCalendar> {
  env.baseCalendar ??= env.calendar;
  env.calendar = withYears(env.baseCalendar, await calendarYears(db));
  return env.calendar;
}

/** The workflow's environment with the database's calendar years: what servers, workers and commands count deadlines with. */
export async function loadWorkflowEnv(db: Db, config: Config): Promise<WorkflowEnv> {
  const env = workflowEnv(config);
  await refreshCalendar(db, env);
  return env;
}

/** Open patches whose running deadline lies past the calendar's end: counted on weekends alone. */
export async function provisionalCount(db: Db, cal: WorkCalendar): Promise<number> {
  const [{ n }] = await db('patch')
    .whereIn('status', ['dispatched', 'rectifying'])
    .andWhereRaw('patch_running_due(status, verify_due, rectify_due) > ?::date', [coveredUntil(cal)])
    .count({ n: '*' });
  return Number(n);
}

export interface Recount {
  code: string;
  field: 'verify_due' | 'rectify_due';
  from_due: string;
  to_due: string;
}

/**
 * Adds (or corrects) one year of the calendar and recounts every open deadline it changes, in one
 * transaction: a deadline counted past the calendar's old end took only weekends as rest days, so its
 * working days are counted again from the day it started (the latest dispatch or rectify) on the new
 * calendar. Each recount is a patch event with both dates; env.calendar is the new calendar after.
 */
export async function addCalendarYear(
  db: Db,
  env: WorkflowEnv,
  actor: string,
  year: CalendarYear,
  utcOffsetH: number,
): Promise<{ calendar: WorkCalendar; recounted: Recount[] }> {
  const old = await refreshCalendar(db, env);
  if (year.year > old.years[1] + 1)
    throw new BadInputError(
      'invalid_calendar',
      say('calendar_year_gap', { last: old.years[1], next: old.years[1] + 1, year: year.year }),
      {
        year: year.year,
      },
    );
  const recounted: Recount[] = [];
  const today = env.today();
  const next = await db.transaction(async (trx) => {
    await trx.raw('select pg_advisory_xact_lock(hashtext(?))', ['tuban-calendar']);
    await trx('calendar_year')
      .insert({
        year: year.year,
        holidays: trx.raw('?::date[]', [year.holidays]),
        workdays: trx.raw('?::date[]', [year.workdays]),
        source: year.source,
        added_by: actor,
      })
      .onConflict('year')
      .merge(['holidays', 'workdays', 'source', 'added_by', 'added_at']);
    const cal = withYears(env.baseCalendar ?? old, [...(await calendarYears(trx))]);
    // deadlines that reach into a year the old calendar did not cover, or into the year corrected
    const from = year.year <= old.years[1] ? `${year.year - 1}-12-31` : coveredUntil(old);
    const open = await runSql<{
      id: number;
      code: string;
      status: string;
      field: 'verify_due' | 'rectify_due';
      due: string;
      overdue_since: string | null;
      started: string | null;
    }>(trx, 'workflow/provisional_deadlines', { after: from, offset_h: utcOffsetH });
    for (const p of open) {
      if (!p.started || p.started > p.due) continue;
      const days = workingDaysBetween(old, p.started, p.due);
      const due = addWorkingDays(cal, p.started, days);
      if (due === p.due) continue;
      await trx('patch')
        .where({ id: p.id })
        .update({ [p.field]: due, ...(p.overdue_since && due >= today ? { overdue_since: null } : {}) });
      await trx('patch_event').insert({
        patch_id: p.id,
        actor,
        type: 'deadline_recounted',
        from_status: p.status,
        to_status: p.status,
        detail: JSON.stringify({
          field: p.field,
          from_due: p.due,
          to_due: due,
          working_days: days,
          calendar_year: year.year,
        }),
      });
      recounted.push({ code: p.code, field: p.field, from_due: p.due, to_due: due });
    }
    return cal;
  });
  env.calendar = next;
  return { calendar: next, recounted };
}
