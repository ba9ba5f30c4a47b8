import { describe, expect, it } from 'vitest';
import { ConflictError, ForbiddenError } from '../core/errors.ts';
import { render } from '../i18n/say.ts';
import {
  addWorkingDays,
  calendarStatus,
  checkCalendarYear,
  isProvisional,
  isWorkingDay,
  loadCalendar,
  parseCalendar,
  withYears,
  workingDaysBetween,
} from '../workflow/calendar.ts';
import { allowedMoves, planTransition, type Action, type PatchStatus, type Role } from '../workflow/lifecycle.ts';
import { ACTION_NAMES } from './helpers/api.ts';

const cn = loadCalendar('config/calendar.cn.json');

describe('working-day calendar', () => {
  it('skips weekends and public holidays, and counts make-up working days', () => {
    expect(isWorkingDay(cn, '2024-02-09')).toBe(true); // Friday before Spring Festival
    expect(isWorkingDay(cn, '2024-02-12')).toBe(false); // Monday, Spring Festival
    expect(isWorkingDay(cn, '2024-02-18')).toBe(true); // Sunday, make-up working day
    expect(isWorkingDay(cn, '2024-02-04')).toBe(true); // Sunday, make-up working day
    expect(isWorkingDay(cn, '2024-03-16')).toBe(false); // ordinary Saturday
  });

  it('adds working days across the 2024 Spring Festival', () => {
    // Thu 8 Feb + 3 working days: Fri 9, (10–17 holiday), Sun 18 (make-up), Mon 19.
    expect(addWorkingDays(cn, '2024-02-08', 3)).toBe('2024-02-19');
    expect(addWorkingDays(cn, '2024-02-08', 0)).toBe('2024-02-08');
    expect(workingDaysBetween(cn, '2024-02-08', '2024-02-19')).toBe(3);
    expect(workingDaysBetween(cn, '2024-02-19', '2024-02-08')).toBe(0);
  });

  it('adds working days across National Day 2024 with its two make-up days', () => {
    // Fri 27 Sep + 5: Sun 29 (make-up), Mon 30, (1–7 Oct holiday), Tue 8, Wed 9, Thu 10.
    expect(addWorkingDays(cn, '2024-09-27', 5)).toBe('2024-10-10');
  });

  it('counts 2026 as the State Council published it: the Spring Festival and 中秋/国庆 with their make-up days', () => {
    // Thu 12 Feb + 5: Fri 13, Sat 14 (make-up), (15–23 holiday), Tue 24, Wed 25, Thu 26
    expect(addWorkingDays(cn, '2026-02-12', 5)).toBe('2026-02-26');
    expect(isWorkingDay(cn, '2026-02-28')).toBe(true); // Saturday, make-up working day
    // Fri 18 Sep + 5: Sun 20 (make-up), Mon 21 … Thu 24, before 中秋 (25–27 Sep)
    expect(isWorkingDay(cn, '2026-09-20')).toBe(true);
    expect(addWorkingDays(cn, '2026-09-18', 5)).toBe('2026-09-24');
    // Thu 24 Sep + 3: (25–27 中秋, 1–7 Oct 国庆) Mon 28, Tue 29, Wed 30
    expect(addWorkingDays(cn, '2026-09-24', 3)).toBe('2026-09-30');
    // Wed 30 Sep + 2: Thu 8 Oct, Fri 9 Oct (and Sat 10 Oct is a make-up day)
    expect(addWorkingDays(cn, '2026-09-30', 2)).toBe('2026-10-09');
    expect(isWorkingDay(cn, '2026-10-10')).toBe(true);
    expect(isWorkingDay(cn, '2026-01-04')).toBe(true); // Sunday after 元旦
    expect(isWorkingDay(cn, '2026-05-09')).toBe(true); // Saturday after 劳动节
  });

  it('marks a deadline past its last year provisional, and warns from 60 days before its end', () => {
    expect(cn.years).toEqual([2024, 2026]);
    expect(isProvisional(cn, '2026-12-31')).toBe(false);
    expect(isProvisional(cn, '2027-01-04')).toBe(true);
    expect(calendarStatus(cn, '2026-09-01').warning).toBeNull();
    const soon = calendarStatus(cn, '2026-12-06');
    expect(soon).toMatchObject({ covered_until: '2026-12-31', days_left: 25 });
    expect(render(soon.warning!, 'en')).toMatch(/ends 2026-12-31 \(25 days left\): add 2027/);
    expect(render(calendarStatus(cn, '2027-01-05').warning!, 'zh-CN')).toMatch(/只到 2026-12-31.*暂定/);
  });

  it('lays a year from its notice over the file, and refuses one whose dates are not its own', () => {
    const y2027 = checkCalendarYear(
      { year: 2027, source: 'test notice', holidays: ['2027-01-01'], workdays: ['2027-01-09'] },
      'y.json',
    );
    const cal = withYears(cn, [y2027]);
    expect(cal.years).toEqual([2024, 2027]);
    expect(isWorkingDay(cal, '2027-01-01')).toBe(false);
    expect(isWorkingDay(cal, '2027-01-09')).toBe(true); // a Saturday
    expect(isWorkingDay(cal, '2026-02-16')).toBe(false); // the file's years stay
    expect(() => checkCalendarYear({ year: 2027, source: 'x', holidays: ['2026-12-31'] }, 'y.json')).toThrow(
      /y\.json: 2026-12-31 not in 2027/,
    );
    expect(() =>
      checkCalendarYear({ year: 2027, source: 'x', holidays: ['2027-01-01'], workdays: ['2027-01-01'] }, 'y.json'),
    ).toThrow(/both/);
    expect(() => checkCalendarYear({ year: 2027, holidays: ['2027-01-01'] }, 'y.json')).toThrow(/y\.json: source/);
  });

  it('refuses a calendar with a day both holiday and make-up day, naming the file', () => {
    expect(() =>
      parseCalendar(
        JSON.stringify({ years: [2024, 2024], holidays: ['2024-01-01'], workdays: ['2024-01-01'] }),
        'cal.json',
      ),
    ).toThrow(/cal\.json: 2024-01-01 listed as both/);
    expect(() => parseCalendar('{"years":[2024,2024],"holidays":["1 Jan"]}', 'bad.json')).toThrow(
      /bad\.json: holidays\.0/,
    );
  });
});

describe('patch lifecycle', () => {
  /** Every state × action × role that is allowed, written out by hand (the spec, not the code). */
  const ALLOWED: [PatchStatus, Action, Role][] = [
    ['detected', 'dispatch', 'analyst'],
    ['detected', 'dismiss', 'analyst'],
    ['detected', 'correct_town', 'analyst'],
    ['detected', 'merge', 'analyst'],
    ['detected', 'split', 'analyst'],
    ['dispatched', 'verify', 'town'],
    ['dispatched', 'correct_town', 'analyst'],
    ['dispatched', 'merge', 'analyst'],
    ['dispatched', 'split', 'analyst'],
    ['dispatched', 'extend', 'supervisor'],
    ['dispatched', 'escalate', 'supervisor'],
    ['illegal', 'rectify', 'town'],
    ['illegal', 'rectify', 'supervisor'],
    ['rectifying', 'report_rectified', 'town'],
    ['rectifying', 'extend', 'supervisor'],
    ['rectifying', 'escalate', 'supervisor'],
    ['rectified', 'close', 'supervisor'],
    ['rectified', 'send_back', 'supervisor'],
  ];
  const STATES: PatchStatus[] = [
    'detected',
    'dispatched',
    'dismissed',
    'illegal',
    'legal',
    'false_change',
    'pre_existing',
    'rectifying',
    'rectified',
    'closed',
    'merged',
    'split',
  ];
  const ROLES: Role[] = ['analyst', 'town', 'supervisor', 'admin'];

  it('allows exactly the listed moves and refuses every other state × action × role', () => {
    let allowed = 0,
      refused = 0;
    for (const s of STATES)
      for (const a of ACTION_NAMES)
        for (const r of ROLES) {
          const ok = ALLOWED.some(([xs, xa, xr]) => xs === s && xa === a && xr === r);
          const attempt = () => planTransition('P-1', s, a, r, 'illegal');
          if (ok) {
            expect(attempt, `${s} ${a} ${r}`).not.toThrow();
            allowed++;
          } else {
            expect(attempt, `${s} ${a} ${r}`).toThrow(
              r === 'admin' || !ALLOWED.some(([, xa, xr]) => xa === a && xr === r) ? ForbiddenError : ConflictError,
            );
            refused++;
          }
        }
    expect(allowed).toBe(ALLOWED.length);
    expect(refused).toBe(STATES.length * ACTION_NAMES.length * ROLES.length - ALLOWED.length);
  });

  it('goes to the verification result, and names the current state and allowed moves when refusing', () => {
    expect(planTransition('P-1', 'dispatched', 'verify', 'town', 'false_change')).toBe('false_change');
    expect(planTransition('P-1', 'rectified', 'send_back', 'supervisor')).toBe('rectifying');
    expect(() => planTransition('P-1', 'closed', 'close', 'supervisor')).toThrow(
      'patch P-1 is closed; close needs rectified. Allowed from closed: none (final state)',
    );
    expect(() => planTransition('P-1', 'detected', 'verify', 'town', 'legal')).toThrow(
      /patch P-1 is detected; verify needs dispatched\. Allowed from detected: dispatch \(analyst\), dismiss \(analyst\)/,
    );
    expect(() => planTransition('P-1', 'illegal', 'close', 'town')).toThrow(/role town office may not close/);
    expect(allowedMoves('rectified', 'supervisor').map((m) => m.action)).toEqual(['close', 'send_back']);
  });
});
