import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { Config } from '../config/env.ts';
import { BadInputError } from '../core/errors.ts';
import { loadCalendar, type WorkCalendar } from './calendar.ts';
import { loadAccountabilityRule, type AccountabilityRule } from './accountability.ts';
import { DEFAULT_POLICY, type DeadlinePolicy } from './lifecycle.ts';
import { formatIssues } from '../core/issues.ts';
import type { ProofRules } from './evidence.proof.ts';

/** What the workflow needs besides the database: the working-day calendar, the deadline policy, today. */
export interface WorkflowEnv {
  /** The calendar deadlines count on: the file's, with the years added in the database over it (store/calendar.ts). */
  calendar: WorkCalendar;
  /** The calendar file's alone, as loaded (set on the first refresh). */
  baseCalendar?: WorkCalendar;
  policy: DeadlinePolicy;
  /** Today's date (YYYY-MM-DD) in the city's time zone; injected so tests can move time. */
  today: () => string;
  /** The daily sweep reminds of deadlines within this many working days (TUBAN_NOTIFY_DUE_DAYS; 0: no reminders). */
  noticeDueDays?: number;
  /** The bureau's 问责 rule for the yearly register (TUBAN_ACCOUNTABILITY_FILE). */
  accountability?: AccountabilityRule;
  /** What a photo must show to count (flags) and how many a verdict or a report needs; absent: DEFAULT_EVIDENCE_RULES. */
  evidence?: EvidenceRules;
}

/** The evidence rules of issue 31, part 4: TUBAN_EVIDENCE_MAX_DISTANCE_M, TUBAN_EVIDENCE_MIN_*_PHOTOS, TUBAN_UTC_OFFSET_H. */
export interface EvidenceRules extends ProofRules {
  minVerifyPhotos: number;
  minRectifyPhotos: number;
}

export const DEFAULT_EVIDENCE_RULES: EvidenceRules = {
  maxDistanceM: 100,
  cityOffsetH: 8,
  minVerifyPhotos: 1,
  minRectifyPhotos: 1,
};

const Days = z.object({
  ecological: z.number().int().min(1),
  farmland: z.number().int().min(1),
  water: z.number().int().min(1),
  general: z.number().int().min(1),
});
const PolicySchema = z.object({ verifyDays: Days, rectifyDays: Days, escalateAfterDays: z.number().int().min(0) });

function loadPolicy(file: string | undefined): DeadlinePolicy {
  if (!file) return DEFAULT_POLICY;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new BadInputError(
      'invalid_deadlines',
      `${file}: cannot read the deadline policy (${(err as Error).message})`,
      { file },
    );
  }
  const r = PolicySchema.safeParse(raw);
  if (!r.success) throw new BadInputError('invalid_deadlines', `${file}: ${formatIssues(r.error.issues)}`, { file });
  return r.data;
}

/** Today's date in the city's time zone. */
function localToday(offsetH: number, now = Date.now()): string {
  return new Date(now + offsetH * 3600_000).toISOString().slice(0, 10);
}

export function workflowEnv(config: Config): WorkflowEnv {
  return {
    calendar: loadCalendar(config.TUBAN_CALENDAR_FILE),
    policy: loadPolicy(config.TUBAN_DEADLINES_FILE),
    today: () => localToday(config.TUBAN_UTC_OFFSET_H),
    noticeDueDays: config.TUBAN_NOTIFY_DUE_DAYS,
    accountability: loadAccountabilityRule(config.TUBAN_ACCOUNTABILITY_FILE),
    evidence: {
      maxDistanceM: config.TUBAN_EVIDENCE_MAX_DISTANCE_M,
      cityOffsetH: config.TUBAN_UTC_OFFSET_H,
      minVerifyPhotos: config.TUBAN_EVIDENCE_MIN_VERIFY_PHOTOS,
      minRectifyPhotos: config.TUBAN_EVIDENCE_MIN_RECTIFY_PHOTOS,
    },
  };
}
