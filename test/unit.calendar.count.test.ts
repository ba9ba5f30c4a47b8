import { describe, expect, it } from 'vitest';
import {
  addDays,
  isWorkingDay,
  loadCalendar,
  workingDaysBetween,
  workingDaysLeft,
  type WorkCalendar,
} from '../workflow/calendar.ts';

/** The day-by-day count the closed form replaced (issue 33): the reference it must agree with. */
function byDays(cal: WorkCalendar, from: string, to: string): number {
  let n = 0;
  for (let d = addDays(from, 1); d <= to; d = addDays(d, 1)) if (isWorkingDay(cal, d)) n++;
  return n;
}

describe('working days counted without a loop over the days', () => {
  const cal = loadCalendar('config/calendar.cn.json');

  it('agrees with counting day by day across holidays, make-up Sundays and year ends', () => {
    let seed = 20240207;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const start = '2023-06-01';
    for (let i = 0; i < 3000; i++) {
      const from = addDays(start, rand(1200));
      const to = addDays(from, rand(400) - 30);
      expect(workingDaysBetween(cal, from, to), `${from} → ${to}`).toBe(to <= from ? 0 : byDays(cal, from, to));
    }
  });

  it('knows the Spring Festival of 2024: make-up Sunday counted, the holiday week not', () => {
    expect(workingDaysBetween(cal, '2024-02-07', '2024-02-20')).toBe(5); // 8, 9, 18 (Sunday, make-up), 19, 20
    expect(workingDaysLeft(cal, '2024-02-20', '2024-02-07')).toBe(-byDays(cal, '2024-02-07', '2024-02-20'));
    expect(workingDaysBetween(cal, '2024-01-01', '2024-01-01')).toBe(0);
  });

  it('counts a deadline ten years back at once', () => {
    const t0 = performance.now();
    for (let i = 0; i < 10_000; i++) workingDaysLeft(cal, '2034-01-15', addDays('2024-01-01', i % 365));
    expect(workingDaysBetween(cal, '2024-01-01', '2034-01-15')).toBe(byDays(cal, '2024-01-01', '2034-01-15'));
    console.log(`10,000 deadlines about ten years overdue counted in ${(performance.now() - t0).toFixed(0)} ms`);
  });
});
