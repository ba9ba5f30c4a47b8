import { localeOf, render } from '../../i18n/say.ts';
import { addCalendarYear, calendarYears, provisionalCount, refreshCalendar } from '../../store/calendar.ts';
import { CalendarYearSchema, calendarStatus, checkCalendarYear } from '../../workflow/calendar.ts';
import { errors, ok, type RouteContext, type ZodApp } from '../context.ts';

/**
 * The working-day calendar: which years it covers (every signed-in user: deadlines are shown against
 * it) and, for admins, adding a year from its published notice, which recounts the open deadlines the
 * new year changes.
 */
export function calendarRoutes(app: ZodApp, ctx: RouteContext): void {
  const { db, env, config, me } = ctx;
  app.get(
    '/api/calendar',
    {
      schema: {
        summary:
          'The working-day calendar: years covered, a warning near its end, the years added, open deadlines past its end',
        tags: ['calendar'],
        response: { ...ok('status'), ...errors(401) },
      },
    },
    async (req) => {
      const cal = await refreshCalendar(db, env);
      const s = calendarStatus(cal, env.today());
      return {
        ...s,
        warning: s.warning ? render(s.warning, localeOf(req.headers['accept-language'])) : null,
        added: (await calendarYears(db)).map((y) => ({
          year: y.year,
          source: y.source,
          holidays: y.holidays.length,
          workdays: y.workdays.length,
        })),
        provisional_deadlines: await provisionalCount(db, cal),
      };
    },
  );
  app.post(
    '/api/calendar/years',
    {
      preValidation: ctx.roles('admin'),
      bodyLimit: 16 * 1024,
      schema: {
        summary:
          'Add (or correct) one year of holidays and make-up working days from its notice, and recount the open deadlines it changes (admin)',
        tags: ['calendar'],
        body: CalendarYearSchema,
        response: { ...ok('the calendar and the deadlines recounted'), ...errors(400, 401, 403) },
      },
    },
    async (req) => {
      const year = checkCalendarYear(req.body, 'body');
      const r = await ctx.audited(req, 200, (trx) =>
        addCalendarYear(trx, env, me(req).username, year, config.TUBAN_UTC_OFFSET_H),
      );
      const s = calendarStatus(r.calendar, env.today());
      return {
        ...s,
        warning: s.warning ? render(s.warning, localeOf(req.headers['accept-language'])) : null,
        recounted: r.recounted,
      };
    },
  );
}
