import { addSaidIssue, say, type Said } from '../i18n/say.ts';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { BadInputError } from '../core/errors.ts';
import { formatIssues } from '../core/issues.ts';

/**
 * A working-day calendar: Monday–Friday, minus public holidays, plus make-up working days
 * (调休: weekend days worked in exchange for a longer holiday). Dates are ISO `YYYY-MM-DD`
 * strings and arithmetic is done in UTC, so no time zone can shift a day.
 */
export interface WorkCalendar {
  holidays: ReadonlySet<string>;
  workdays: ReadonlySet<string>;
  /** First and last year the file covers; outside them only weekends count as rest days. */
  years: [number, number];
}

/** Dates tuban accepts anywhere (API, CLI, calendar): every loop over days is bounded by this window. */
export const DATE_MIN = '2000-01-01';
export const DATE_MAX = '2100-12-31';

/** Why `value` is not a usable date, or null: ISO form, a real calendar day, inside DATE_MIN..DATE_MAX. */
export function dateProblem(value: string): Said | null {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) return say('date_form', { value });
  const d = new Date(`${value}T00:00:00Z`);
  if (Number.isNaN(d.getTime()) || d.toISOString().slice(0, 10) !== value) return say('date_invalid', { value });
  if (value < DATE_MIN || value > DATE_MAX) return say('date_out_of_range', { value, min: DATE_MIN, max: DATE_MAX });
  return null;
}

/** A date field of a request or file: the same rule as `dateProblem`, for zod schemas. */
export const IsoDate = z.string().superRefine((v, ctx) => {
  const problem = dateProblem(v);
  if (problem) addSaidIssue(ctx, problem);
});

/** Throws a bad-input error naming `field` unless `value` is a usable date. */
export function checkDate(value: string, field: string): string {
  const problem = dateProblem(value);
  if (problem) throw new BadInputError('bad_date', say('date_field', { field, problem }), { field, value });
  return value;
}

const DATE = IsoDate;
const CalendarFileSchema = z.object({
  description: z.string().optional(),
  years: z.tuple([z.number().int(), z.number().int()]),
  holidays: z.array(DATE),
  workdays: z.array(DATE).default([]),
});

export function parseCalendar(text: string, file: string): WorkCalendar {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new BadInputError('invalid_calendar', say('calendar_json', { file, reason: (err as Error).message }), {
      file,
    });
  }
  const parsed = CalendarFileSchema.safeParse(raw);
  if (!parsed.success)
    throw new BadInputError(
      'invalid_calendar',
      say('calendar_invalid', { file, issues: formatIssues(parsed.error.issues) }),
      { file },
    );
  const c = parsed.data;
  const both = c.holidays.filter((d) => c.workdays.includes(d));
  if (both.length) throw new BadInputError('invalid_calendar', say('calendar_both', { file, dates: both }), { file });
  return { holidays: new Set(c.holidays), workdays: new Set(c.workdays), years: c.years };
}

export function loadCalendar(file: string): WorkCalendar {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new BadInputError('invalid_calendar', say('calendar_unreadable', { file, reason: (err as Error).message }), {
      file,
    });
  }
  return parseCalendar(text, file);
}

export function addDays(date: string, n: number): string {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

export function isWorkingDay(cal: WorkCalendar, date: string): boolean {
  if (cal.workdays.has(date)) return true;
  if (cal.holidays.has(date)) return false;
  const dow = new Date(`${date}T00:00:00Z`).getUTCDay();
  return dow !== 0 && dow !== 6;
}

/**
 * The date `n` working days after `date` (the start day itself is not counted). n = 0 gives `date`.
 * A start or a result outside DATE_MIN..DATE_MAX is bad input, so the loop runs at most the window's length.
 */
export function addWorkingDays(cal: WorkCalendar, date: string, n: number): string {
  if (!Number.isInteger(n) || n < 0) throw new Error(`working days must be a whole number ≥ 0, got ${n}`);
  checkDate(date, 'date');
  let d = date;
  for (let left = n; left > 0;) {
    d = addDays(d, 1);
    if (d > DATE_MAX)
      throw new BadInputError('bad_date', say('working_days_past', { days: n, date, max: DATE_MAX }), {
        field: 'date',
        value: date,
      });
    if (isWorkingDay(cal, d)) left--;
  }
  return d;
}

/**
 * Working days in (from, to]: how many working days `to` lies after `from` (0 when to ≤ from).
 * Both ends are clamped to DATE_MIN..DATE_MAX (a stored date from before the window was validated
 * counts no further), so the loop is bounded whatever it is given.
 */
export function workingDaysBetween(cal: WorkCalendar, from: string, to: string): number {
  const lo = from < DATE_MIN ? DATE_MIN : from;
  const hi = to > DATE_MAX ? DATE_MAX : to;
  let n = 0;
  for (let d = addDays(lo, 1); d <= hi; d = addDays(d, 1)) if (isWorkingDay(cal, d)) n++;
  return n;
}

/**
 * Working days from `today` to `due`: ≥ 0 while the deadline is ahead (0: due today), negative when it
 * has passed (-1: due on the last working day before today).
 */
export function workingDaysLeft(cal: WorkCalendar, today: string, due: string): number {
  return due >= today ? workingDaysBetween(cal, today, due) : -workingDaysBetween(cal, due, today);
}
