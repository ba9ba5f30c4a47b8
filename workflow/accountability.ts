import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { BadInputError } from '../core/errors.ts';
import { formatIssues } from '../core/issues.ts';

/**
 * The bureau's rule for referring a town for 问责 (accountability) in the yearly register: a town is
 * referred when any criterion whose threshold is above 0 is reached. Each city sets its own (in a JSON
 * file, TUBAN_ACCOUNTABILITY_FILE); by default, new illegal construction of the year left unrectified
 * past its rectification deadline, one case being enough.
 */
export const AccountabilityRule = z.object({
  /** Patches of the year found illegal and still unrectified past their rectification deadline. */
  overdueUnrectified: z.number().int().min(0),
  /** Patches of the year listed for supervision (挂牌督办), whatever became of them since. */
  escalations: z.number().int().min(0),
  /** Months of the year without zero growth (新增两违零增长). */
  monthsWithoutZeroGrowth: z.number().int().min(0),
});
export type AccountabilityRule = z.infer<typeof AccountabilityRule>;

export const DEFAULT_ACCOUNTABILITY: AccountabilityRule = {
  overdueUnrectified: 1,
  escalations: 0,
  monthsWithoutZeroGrowth: 0,
};

export function loadAccountabilityRule(file: string | undefined): AccountabilityRule {
  if (!file) return DEFAULT_ACCOUNTABILITY;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new BadInputError(
      'invalid_accountability',
      `${file}: cannot read the 问责 rule (${(err as Error).message})`,
      {
        file,
      },
    );
  }
  const r = AccountabilityRule.safeParse(raw);
  if (!r.success)
    throw new BadInputError('invalid_accountability', `${file}: ${formatIssues(r.error.issues)}`, { file });
  return r.data;
}

/** A town's year as the rule reads it. */
export interface TownYearFacts {
  overdue_unrectified: number;
  escalations: number;
  months: number;
  zero_growth_months: number;
}

/** The criteria a town's year reaches (empty: not referred), each as a code and the count that reached it. */
export function referralReasons(
  rule: AccountabilityRule,
  t: TownYearFacts,
): { criterion: keyof AccountabilityRule; count: number; threshold: number }[] {
  const facts: Record<keyof AccountabilityRule, number> = {
    overdueUnrectified: t.overdue_unrectified,
    escalations: t.escalations,
    monthsWithoutZeroGrowth: t.months - t.zero_growth_months,
  };
  return (Object.keys(facts) as (keyof AccountabilityRule)[])
    .filter((k) => rule[k] > 0 && facts[k] >= rule[k])
    .map((k) => ({ criterion: k, count: facts[k], threshold: rule[k] }));
}
