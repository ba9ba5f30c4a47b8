import { z } from 'zod';
import { monthlyTownReport, patchTrend, supervisorBoard, todoList, yearlyTownReport } from '../../store/reports.ts';
import { answers, errors, MonthString, ok, type RouteContext, type ZodApp } from '../context.ts';
import { en, localeOf, render, say } from '../../i18n/say.ts';
import type { Locale } from '../../i18n/index.ts';
import type { ReportTable } from '../../export/report.xlsx.ts';
import { BoardBody, MonthlyReportBody, TodoBody, TrendBody, YearlyReportBody } from '../../api/reports.ts';
import { DEFAULT_ACCOUNTABILITY, type AccountabilityRule } from '../../workflow/accountability.ts';
import { findCjkFont } from '../../export/fonts.ts';

const MonthQuery = z.object({ month: MonthString });
/** Where a to-do page ended: its last patch's running deadline (empty for none), month and code. */
const TodoCursor = z
  .string()
  .regex(/^(\d{4}-\d{2}-\d{2})?\|\d{4}-\d{2}\|[0-9A-Za-z-]{1,64}$/, en('form_todo_after'))
  // a day that exists (2024-02-30 would reach the database and fail there)
  .refine((c) => {
    const day = c.split('|')[0];
    if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) return true; // none, or the pattern's refusal says it
    const d = new Date(`${day}T00:00:00Z`);
    return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === day;
  }, en('form_todo_after'));
const TodoQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(1000).default(200).describe('patches on this page'),
    offset: z.coerce.number().int().min(0).max(10_000_000).default(0).describe('patches before this page'),
    after: TodoCursor.optional().describe("the page after this one's last patch: the answer's next_after"),
  })
  .refine((q) => !(q.after && q.offset), { path: ['after'], message: en('form_after_offset') });
const YearQuery = z.object({
  year: z
    .string()
    .regex(/^20\d\d$/, en('form_year'))
    .describe('the year, e.g. 2026'),
});
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
    '/api/reports/monthly.xlsx',
    {
      schema: {
        summary: 'The monthly town report as a workbook, with the ranking rule in words',
        tags: ['reports'],
        querystring: MonthQuery,
        response: { ...ok('an .xlsx workbook'), ...errors(400, 401) },
      },
    },
    async (req, reply) => {
      const locale = localeOf(req.headers['accept-language']);
      const rep = await monthlyTownReport(db, req.query.month);
      const { reportXlsx } = await import('../../export/report.xlsx.ts');
      const file = await reportXlsx(monthlyTable(rep, locale));
      const name = `${req.query.month}_镇街排名.xlsx`;
      return reply
        .header('content-type', 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet')
        .header(
          'content-disposition',
          `attachment; filename="${req.query.month}.xlsx"; filename*=UTF-8''${encodeURIComponent(name)}`,
        )
        .send(file);
    },
  );
  const yearly = (year: string) => yearlyTownReport(db, year, env.accountability ?? DEFAULT_ACCOUNTABILITY);
  app.get(
    '/api/reports/yearly',
    {
      schema: {
        summary:
          'The yearly register (年度台账): per town and for the city, new patches, verified %, illegal, 处置 and 腾出土地 in m² and 亩, zero-growth months and year, supervision cases, 问责 referrals',
        tags: ['reports'],
        querystring: YearQuery,
        response: { ...answers(YearlyReportBody, 'the year by town, the city and the rule'), ...errors(400, 401) },
      },
    },
    async (req) => yearly(req.query.year),
  );
  for (const format of ['xlsx', 'pdf'] as const)
    app.get(
      `/api/reports/yearly.${format}`,
      {
        schema: {
          summary: `The yearly register as ${format === 'xlsx' ? 'a workbook' : 'a PDF to print'}, with the definitions and the 问责 rule in words`,
          tags: ['reports'],
          querystring: YearQuery,
          response: { ...ok(`an .${format} file`), ...errors(400, 401) },
        },
      },
      async (req, reply) => {
        const locale = localeOf(req.headers['accept-language']);
        const table = yearlyTable(await yearly(req.query.year), locale);
        const file =
          format === 'xlsx'
            ? await (await import('../../export/report.xlsx.ts')).reportXlsx(table)
            : await (
                await import('../../export/report.pdf.ts')
              ).reportPdf(table, findCjkFont(ctx.config.TUBAN_PDF_FONT));
        const name = `${req.query.year}_两违图斑年度台账.${format}`;
        return reply
          .header(
            'content-type',
            format === 'xlsx' ? 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet' : 'application/pdf',
          )
          .header(
            'content-disposition',
            `attachment; filename="${req.query.year}.${format}"; filename*=UTF-8''${encodeURIComponent(name)}`,
          )
          .send(file);
      },
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
        querystring: TodoQuery,
        response: { ...answers(TodoBody, 'the patches waiting on this user, a page of them'), ...errors(400, 401) },
      },
    },
    async (req) => todoList(db, env, me(req), req.query),
  );
}

/** The month's ranking as a table: the ranking's rule in words, a row per town in rank order, the city's totals. */
function monthlyTable(rep: MonthlyReportBody, locale: Locale): ReportTable {
  const w = (key: Parameters<typeof say>[0], params = {}) => render(say(key, params), locale);
  const figures = (c: MonthlyReportBody['city'] | MonthlyReportBody['towns'][number]) => [
    c.new_patches,
    c.new_area_m2,
    c.verified,
    c.unverified,
    c.unverified_overdue,
    c.illegal,
    c.rectified,
    c.overdue,
    c.escalated,
  ];
  return {
    title: w('report_monthly_title', { month: rep.month }),
    notes: [w('board_ranking_rule')],
    columns: [
      w('report_col_rank'),
      w('report_col_town_code'),
      w('col_town'),
      w('board_zero_growth'),
      w('board_new'),
      w('col_area_m2'),
      w('board_verified'),
      w('board_unverified'),
      w('board_overdue_unverified'),
      w('board_illegal'),
      w('board_rectified'),
      w('col_overdue'),
      w('col_escalated'),
      w('board_penalty'),
    ].map((heading) => ({ heading })),
    rows: rep.towns.map((t) => [
      t.rank,
      t.town_code,
      t.town_name,
      t.zero_growth ? '是' : '否',
      ...figures(t),
      t.penalty,
    ]),
    totals: ['', '', w('board_city'), rep.city.zero_growth_towns, ...figures(rep.city), null],
  };
}

/** The rule in words: the criteria set, or that none is. */
function ruleText(
  rule: AccountabilityRule,
  loc: Locale,
  w: (key: Parameters<typeof say>[0], params?: object) => string,
): string {
  const parts = [
    rule.overdueUnrectified > 0 ? w('report_rule_overdue', { n: rule.overdueUnrectified }) : null,
    rule.escalations > 0 ? w('report_rule_escalations', { n: rule.escalations }) : null,
    rule.monthsWithoutZeroGrowth > 0 ? w('report_rule_months', { n: rule.monthsWithoutZeroGrowth }) : null,
  ].filter((p): p is string => p !== null);
  return w('report_yearly_rule', {
    rules: parts.length ? parts.join(loc === 'en' ? '; ' : '；') : w('report_rule_none'),
  });
}

/** The yearly register as a table: the months counted, the definitions and the rule, a row per town, the city's totals. */
function yearlyTable(rep: YearlyReportBody, loc: Locale): ReportTable {
  const w = (key: Parameters<typeof say>[0], params = {}) => render(say(key, params), loc);
  const yes = (b: boolean) => w(b ? 'report_yes' : 'report_no');
  const figures = (c: YearlyReportBody['city'] | YearlyReportBody['towns'][number]) => [
    c.new_patches,
    c.new_area_m2,
    c.verified,
    c.verified_pct,
    c.illegal,
    c.illegal_m2,
    c.illegal_mu,
    c.rectified,
    c.rectified_m2,
    c.rectified_mu,
    c.freed_m2,
    c.freed_mu,
    c.overdue_unrectified,
    c.escalations,
  ];
  return {
    title: w('report_yearly_title', { year: rep.year }),
    notes: [
      rep.months.length
        ? w('report_yearly_months', { count: rep.months.length, months: rep.months.join(', ') })
        : w('report_yearly_none', { year: rep.year }),
      w('report_yearly_defs'),
      ruleText(rep.rule, loc, w),
    ],
    columns: [
      w('report_col_town_code'),
      w('col_town'),
      w('board_new'),
      w('report_col_new_area'),
      w('board_verified'),
      w('report_col_verified_pct'),
      w('board_illegal'),
      w('report_col_illegal_m2'),
      w('report_col_illegal_mu'),
      w('board_rectified'),
      w('report_col_rectified_m2'),
      w('report_col_rectified_mu'),
      w('report_col_freed_m2'),
      w('report_col_freed_mu'),
      w('report_col_overdue_unrectified'),
      w('report_col_escalations'),
      w('report_col_zero_months'),
      w('report_col_zero_year'),
      w('report_col_referred'),
    ].map((heading) => ({ heading })),
    rows: rep.towns.map((t) => [
      t.town_code,
      t.town_name,
      ...figures(t),
      `${t.zero_growth_months}/${t.months}`,
      yes(t.zero_growth_year),
      yes(t.referred),
    ]),
    totals: [
      '',
      w('board_city'),
      ...figures(rep.city),
      '',
      `${rep.city.zero_growth_towns}/${rep.city.towns}`,
      `${rep.city.referred_towns}`,
    ],
  };
}
