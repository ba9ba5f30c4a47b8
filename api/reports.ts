/**
 * The API's answers about towns and deadlines — the monthly ranking, the board, the trend, the to-do
 * list — as zod schemas, beside api/responses.ts and used the same way. Imports only zod.
 */
import { z } from 'zod';
import { Day, ImageryCheck, ROLE_NAMES } from './responses.ts';

export const TownCounts = {
  new_patches: z.number(),
  new_area_m2: z.number(),
  verified: z.number(),
  illegal: z.number(),
  rectified: z.number(),
  overdue: z.number(),
  escalated: z.number(),
  prev_new_patches: z.number(),
  unverified: z.number().describe('new patches not yet verified (dismissed ones excepted)'),
  unverified_overdue: z.number().describe('of those, dispatched and past their verification deadline'),
  new_extension: z.number().describe('new patches that extend a registered building (扩建)'),
  new_on_building: z
    .number()
    .describe('new patches on a registered building: rebuilt, raised, built on top (原址改建加建)'),
};
/** One town's month as the report's query gives it. */
export const TownMonth = z.looseObject({
  ...TownCounts,
  town_code: z.string(),
  town_name: z.string(),
  verified_pct: z.number().nullable(),
  zero_growth: z.boolean().describe('every new patch verified (or dismissed) and none illegal'),
  illegal_closed: z.number().describe('of the illegal, rectified and closed'),
  penalty: z
    .number()
    .describe(
      'points against the town (lower ranks higher): 1 a patch found illegal (0.5 once closed), 1.5 one unverified past its deadline (视同违法), 1 more a case listed for supervision',
    ),
});
export type TownMonth = z.output<typeof TownMonth>;
export const MonthlyReportBody = z.looseObject({
  month: z.string(),
  previous_month: z.string(),
  city: z.looseObject({
    ...TownCounts,
    change_from_previous: z.number(),
    zero_growth_towns: z.number(),
    towns: z.number(),
  }),
  towns: z.array(TownMonth.extend({ rank: z.number().int(), change_from_previous: z.number() })),
});
export type MonthlyReportBody = z.output<typeof MonthlyReportBody>;

/** One town's year (or the city's) in the yearly register: counts summed over the year's months, areas in m² and 亩. */
export const YearFigures = {
  new_patches: z.number(),
  new_area_m2: z.number(),
  verified: z.number(),
  verified_pct: z.number().nullable().describe('verified of the new patches not dismissed in the office'),
  unverified: z.number(),
  unverified_overdue: z.number(),
  illegal: z.number(),
  illegal_m2: z.number(),
  illegal_mu: z.number(),
  rectified: z
    .number()
    .describe('处置: illegal patches rectified (demolished, confiscated, fined and legalised) and reported done'),
  rectified_m2: z.number().describe('处置面积'),
  rectified_mu: z.number(),
  freed_m2: z.number().describe('腾出土地面积: the area of illegal patches demolished or confiscated'),
  freed_mu: z.number(),
  overdue: z.number(),
  overdue_unrectified: z.number().describe('illegal, still rectifying past the rectification deadline'),
  escalated: z.number().describe('listed for supervision and still open'),
  escalations: z.number().describe('listed for supervision this year, whatever became of them'),
  illegal_closed: z.number(),
};
const Referral = z.object({
  criterion: z.enum(['overdueUnrectified', 'escalations', 'monthsWithoutZeroGrowth']),
  count: z.number(),
  threshold: z.number(),
});
export const TownYear = z.looseObject({
  ...YearFigures,
  town_code: z.string(),
  town_name: z.string(),
  months: z.number().int().describe('months of the year counted (a batch ran in them)'),
  zero_growth_months: z.number().int(),
  zero_growth_year: z.boolean().describe('zero growth in every month counted'),
  referred: z.boolean().describe("referred for 问责 by the bureau's rule"),
  reasons: z.array(Referral),
});
export type TownYear = z.output<typeof TownYear>;
export const YearlyReportBody = z.looseObject({
  year: z.string(),
  months: z.array(z.string()),
  rule: z.object({ overdueUnrectified: z.number(), escalations: z.number(), monthsWithoutZeroGrowth: z.number() }),
  city: z.looseObject({
    ...YearFigures,
    towns: z.number(),
    zero_growth_towns: z.number().describe('towns with zero growth for the year'),
    referred_towns: z.number(),
  }),
  towns: z.array(TownYear),
});
export type YearlyReportBody = z.output<typeof YearlyReportBody>;

const DaysLeft = z
  .number()
  .int()
  .describe('working days to the deadline: 0 due today, negative overdue by that many working days');
const BoardItem = z.looseObject({
  code: z.string(),
  status: z.string(),
  class: z.string(),
  deadline: z.enum(['verification', 'rectification']),
  due: z.string(),
  due_provisional: z
    .boolean()
    .optional()
    .describe("past the working-day calendar's last year: counted on weekends alone"),
  days_left: DaysLeft,
});
/** An ordered demolition whose latest imagery check disagrees with what the town reported (回头看). */
const LookbackItem = z.looseObject({
  code: z.string(),
  status: z.string(),
  measure: z.string().nullable(),
  imagery_check: ImageryCheck,
});
export const BoardBody = z.looseObject({
  today: z.string(),
  due_by: z.string(),
  working_days: z.number().int(),
  towns: z.array(
    z.looseObject({
      town_code: z.string(),
      town_name: z.string(),
      due_soon: z.array(BoardItem).describe('the most urgent of them (at most 20), nearest deadline first'),
      overdue: z.array(BoardItem),
      escalated: z.array(BoardItem),
      due_soon_total: z.number().int().describe('how many are due soon in all'),
      overdue_total: z.number().int(),
      escalated_total: z.number().int(),
      reported_standing: z
        .array(LookbackItem)
        .describe(
          '报告已整改但影像仍在: reported rectified (or closed), the latest imagery shows the structure standing',
        ),
      gone_unreported: z
        .array(LookbackItem)
        .describe('影像显示已拆除、待上报: still rectifying, the latest imagery shows the structure gone'),
    }),
  ),
});
export type BoardBody = z.output<typeof BoardBody>;

export const TrendBody = z.array(
  z.looseObject({ month: z.string(), new_patches: z.number(), new_area_m2: z.number(), illegal: z.number() }),
);
export type TrendBody = z.output<typeof TrendBody>;

/** A patch waiting on the user, with its deadline and the moves they can make. */
export const TodoItem = z.looseObject({
  code: z.string(),
  month: z.string(),
  town_code: z.string().nullable(),
  town_name: z.string().nullable(),
  status: z.string(),
  class: z.string(),
  area_m2: z.number(),
  due: Day,
  due_provisional: z
    .boolean()
    .optional()
    .describe("past the working-day calendar's last year: counted on weekends alone"),
  deadline: z.enum(['verification', 'rectification']).nullable(),
  days_left: DaysLeft.nullable(),
  overdue_since: Day,
  escalated: z.boolean(),
  actions: z.array(z.string()).describe('the moves this user can make now'),
});
export type TodoItem = z.output<typeof TodoItem>;

/** What waits on the signed-in user: one row per patch, across months, the nearest deadline first. */
export const TodoBody = z.looseObject({
  today: z.string(),
  role: z.enum(ROLE_NAMES),
  states: z.array(z.string()).describe('the states that wait on this role'),
  total: z.number().int().describe('patches waiting on this user in all'),
  overdue: z.number().int().describe('of them, past their deadline'),
  limit: z.number().int(),
  offset: z.number().int(),
  next_after: z
    .string()
    .nullable()
    .describe('give as after= for the page that follows (null on the last page): read from there, not counted past'),
  patches: z.array(TodoItem).describe('this page of them'),
});
export type TodoBody = z.output<typeof TodoBody>;
