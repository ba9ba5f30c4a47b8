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
const DATE_MAX = '2100-12-31';

/** Why `value` is not a usable date, or null: ISO form, a real calendar day, inside DATE_MIN..DATE_MAX. */
function dateProblem(value: string): Said | null {
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
  if (hi <= lo) return 0;
  // without a loop over the days (a board of 10,000 deadlines a year overdue counted each day by day,
  // issue 33): the weekdays in (lo, hi], less the holidays on weekdays, plus the make-up days on weekends
  const a = epochDay(lo) + 1;
  const b = epochDay(hi);
  const { off, on } = exceptions(cal);
  return weekdaysIn(a, b) - countIn(off, a, b) + countIn(on, a, b);
}

/** Days since 1970-01-01 of a YYYY-MM-DD date. */
const epochDay = (date: string) => Math.round(Date.parse(`${date}T00:00:00Z`) / 86_400_000);

/** Monday to Friday in the days a..b (epoch days, both counted). 1970-01-01 was a Thursday. */
function weekdaysIn(a: number, b: number): number {
  const upTo = (d: number) => {
    // weekdays in epoch days 0..d (d ≥ -1): whole weeks, then the days of the last one from Thursday
    if (d < 0) return 0;
    const weeks = Math.floor((d + 1) / 7);
    let n = weeks * 5;
    for (let i = weeks * 7; i <= d; i++) {
      const dow = (i + 4) % 7; // 0 Sunday … 6 Saturday
      if (dow !== 0 && dow !== 6) n++;
    }
    return n;
  };
  const shift = 7 * 53 * 20; // whole weeks, so the days before 1970 count from a positive origin
  return upTo(b + shift) - upTo(a - 1 + shift);
}

/** A calendar's exceptions to the week as sorted epoch days: holidays on weekdays, make-up days on weekends. */
const EXCEPTIONS = new WeakMap<WorkCalendar, { off: number[]; on: number[] }>();
function exceptions(cal: WorkCalendar): { off: number[]; on: number[] } {
  let e = EXCEPTIONS.get(cal);
  if (!e) {
    const weekend = (d: string) => [0, 6].includes(new Date(`${d}T00:00:00Z`).getUTCDay());
    e = {
      off: [...cal.holidays]
        .filter((d) => !cal.workdays.has(d) && !weekend(d))
        .map(epochDay)
        .sort((x, y) => x - y),
      on: [...cal.workdays]
        .filter(weekend)
        .map(epochDay)
        .sort((x, y) => x - y),
    };
    EXCEPTIONS.set(cal, e);
  }
  return e;
}

/** How many of the sorted days lie in a..b. */
function countIn(days: number[], a: number, b: number): number {
  const firstAtLeast = (x: number) => {
    let lo = 0;
    let hi = days.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (days[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  return firstAtLeast(b + 1) - firstAtLeast(a);
}

/**
 * Working days from `today` to `due`: ≥ 0 while the deadline is ahead (0: due today), negative when it
 * has passed (-1: due on the last working day before today).
 */
export function workingDaysLeft(cal: WorkCalendar, today: string, due: string): number {
  return due >= today ? workingDaysBetween(cal, today, due) : -workingDaysBetween(cal, due, today);
}

/** One year of the calendar as a notice publishes it: `tuban calendar add` and the admin API take this. */
export const CalendarYearSchema = z.object({
  year: z.number().int().min(2000).max(2100),
  /** Where the dates come from: the notice's title and date (国务院办公厅关于…的通知, YYYY-MM-DD). */
  source: z.string().min(1).max(500),
  holidays: z.array(DATE).min(1).max(60),
  workdays: z.array(DATE).max(30).default([]),
});
export type CalendarYear = z.infer<typeof CalendarYearSchema>;

/** A year's file checked: every date in that year, none both a holiday and a make-up day. Throws naming the file and what is wrong. */
export function checkCalendarYear(raw: unknown, file: string): CalendarYear {
  const parsed = CalendarYearSchema.safeParse(raw);
  if (!parsed.success)
    throw new BadInputError(
      'invalid_calendar',
      say('calendar_invalid', { file, issues: formatIssues(parsed.error.issues) }),
      { file },
    );
  const y = parsed.data;
  const outside = [...y.holidays, ...y.workdays].filter((d) => Number(d.slice(0, 4)) !== y.year);
  if (outside.length)
    throw new BadInputError('invalid_calendar', say('calendar_year_outside', { file, year: y.year, dates: outside }), {
      file,
    });
  const both = y.holidays.filter((d) => y.workdays.includes(d));
  if (both.length) throw new BadInputError('invalid_calendar', say('calendar_both', { file, dates: both }), { file });
  return y;
}

/**
 * The calendar with these years laid over it: a year given replaces whatever the calendar had for it
 * (a correction), and the covered years run on to the last year given.
 */
export function withYears(base: WorkCalendar, years: readonly CalendarYear[]): WorkCalendar {
  if (!years.length) return base;
  const replaced = new Set(years.map((y) => y.year));
  const keep = (d: string) => !replaced.has(Number(d.slice(0, 4)));
  return {
    holidays: new Set([...[...base.holidays].filter(keep), ...years.flatMap((y) => y.holidays)]),
    workdays: new Set([...[...base.workdays].filter(keep), ...years.flatMap((y) => y.workdays)]),
    years: [Math.min(base.years[0], ...replaced), Math.max(base.years[1], ...replaced)],
  };
}

/** The last day the calendar knows the holidays of. */
export const coveredUntil = (cal: WorkCalendar): string => `${cal.years[1]}-12-31`;

/**
 * A deadline counted past the calendar's last year: its holidays were not known, so only weekends were
 * taken as rest days, and it may fall on a holiday. Recounted when the year is added (`tuban calendar add`).
 */
export const isProvisional = (cal: WorkCalendar, due: string | null | undefined): boolean =>
  !!due && due > coveredUntil(cal);

/** A patch's deadlines, each marked provisional when it lies past the calendar's end (the patch answers carry these). */
export function dueFlags(
  cal: WorkCalendar,
  p: { verify_due: string | null; rectify_due: string | null },
): { verify_due_provisional: boolean; rectify_due_provisional: boolean } {
  return {
    verify_due_provisional: isProvisional(cal, p.verify_due),
    rectify_due_provisional: isProvisional(cal, p.rectify_due),
  };
}

/** Warn this many days before the calendar's end: the next year's notice usually comes in November. */
const CALENDAR_WARN_DAYS = 60;

/** Which years the calendar covers, and a warning from CALENDAR_WARN_DAYS before its end (and after). */
export function calendarStatus(
  cal: WorkCalendar,
  today: string,
): { years: [number, number]; covered_until: string; days_left: number; warning: Said | null } {
  const until = coveredUntil(cal);
  const daysLeft = Math.round((Date.parse(`${until}T00:00:00Z`) - Date.parse(`${today}T00:00:00Z`)) / 86_400_000);
  const next = cal.years[1] + 1;
  const warning =
    daysLeft < 0
      ? say('calendar_ended', { until, next })
      : daysLeft <= CALENDAR_WARN_DAYS
        ? say('calendar_ends_soon', { until, days: daysLeft, next })
        : null;
  return { years: cal.years, covered_until: until, days_left: daysLeft, warning };
}
