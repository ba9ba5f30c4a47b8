import { z } from 'zod';
import { patchTrend } from '../../store/map.ts';
import { monthlyTownReport, supervisorBoard, todoList } from '../../store/reports.ts';
import { answers, errors, MonthString, type RouteContext, type ZodApp } from '../context.ts';
import { BoardBody, MonthlyReportBody, TodoBody, TrendBody } from '../../api/reports.ts';

const MonthQuery = z.object({ month: MonthString });
const BoardQuery = z.object({ days: z.coerce.number().int().min(0).max(60).default(3).describe('working days ahead') });
const TrendQuery = z.object({
  month: MonthString.describe('the last month shown'),
  months: z.coerce.number().int().min(1).max(60).default(12),
});

/** The supervisor's figures: the monthly town report, the deadline board, the trend. */
export function reportRoutes(app: ZodApp, ctx: RouteContext): void {
  const { db, env, me } = ctx;
  app.get(
    '/api/reports/monthly',
    {
      schema: {
        summary:
          'Monthly town report with the zero-growth (新增两违零增长) ranking: every town for every role, as the bureau publishes it',
        tags: ['reports'],
        querystring: MonthQuery,
        response: { ...answers(MonthlyReportBody, 'towns with their counts and rank'), ...errors(400, 401) },
      },
    },
    async (req) => monthlyTownReport(db, req.query.month),
  );
  app.get(
    '/api/reports/board',
    {
      preValidation: ctx.roles('supervisor', 'analyst', 'town'),
      schema: {
        summary: 'Supervisor board: deadlines due within N working days, overdue, escalated',
        tags: ['reports'],
        querystring: BoardQuery,
        response: { ...answers(BoardBody, 'deadlines by town'), ...errors(400, 401, 403) },
      },
    },
    async (req) => supervisorBoard(db, env, me(req), req.query.days),
  );
  app.get(
    '/api/reports/trend',
    {
      schema: {
        summary: 'New patches per month and town, for the months up to the given one',
        tags: ['reports'],
        querystring: TrendQuery,
        response: { ...answers(TrendBody, 'counts by month'), ...errors(400, 401) },
      },
    },
    async (req) => patchTrend(db, me(req), req.query.month, req.query.months),
  );
  app.get(
    '/api/todo',
    {
      schema: {
        summary:
          "我的待办: every patch waiting on the signed-in user's move (a town user: their town's), across months, nearest deadline first",
        tags: ['reports'],
        response: { ...answers(TodoBody, 'the patches waiting on this user'), ...errors(401) },
      },
    },
    async (req) => todoList(db, env, me(req)),
  );
}
