import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { BadInputError } from '../pipeline/errors.ts';

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

const DATE = z.string().regex(/^\d{4}-\d{2}-\d{2}$/);
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
    throw new BadInputError('invalid_calendar', `${file}: not valid JSON (${(err as Error).message})`, { file });
  }
  const parsed = CalendarFileSchema.safeParse(raw);
  if (!parsed.success) throw new BadInputError('invalid_calendar', `${file}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`, { file });
  const c = parsed.data;
  const both = c.holidays.filter((d) => c.workdays.includes(d));
  if (both.length) throw new BadInputError('invalid_calendar', `${file}: ${both.join(', ')} listed as both holiday and make-up working day`, { file });
  return { holidays: new Set(c.holidays), workdays: new Set(c.workdays), years: c.years };
}

export function loadCalendar(file: string): WorkCalendar {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new BadInputError('invalid_calendar', `${file}: cannot read the working-day calendar (${(err as Error).message})`, { file });
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

/** The date `n` working days after `date` (the start day itself is not counted). n = 0 gives `date`. */
export function addWorkingDays(cal: WorkCalendar, date: string, n: number): string {
  if (!Number.isInteger(n) || n < 0) throw new Error(`working days must be a whole number ≥ 0, got ${n}`);
  let d = date;
  for (let left = n; left > 0; ) {
    d = addDays(d, 1);
    if (isWorkingDay(cal, d)) left--;
  }
  return d;
}

/** Working days in (from, to]: how many working days `to` lies after `from` (0 when to ≤ from). */
export function workingDaysBetween(cal: WorkCalendar, from: string, to: string): number {
  let n = 0;
  for (let d = addDays(from, 1); d <= to; d = addDays(d, 1)) if (isWorkingDay(cal, d)) n++;
  return n;
}
