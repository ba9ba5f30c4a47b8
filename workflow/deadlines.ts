import { say } from '../i18n/say.ts';
import { BadInputError } from '../core/errors.ts';
import { addWorkingDays, type WorkCalendar } from './calendar.ts';
import type { DeadlinePolicy, PatchClass } from './lifecycle.ts';

/** The verification deadline a dispatch sets: the class's working days from today. */
export const verifyDue = (cal: WorkCalendar, policy: DeadlinePolicy, cls: PatchClass, today: string): string =>
  addWorkingDays(cal, today, policy.verifyDays[cls]);

/**
 * The rectification deadline: the policy's by default; a town may set an earlier one, never a later one
 * (only a supervisor's extend moves it out), and never one before today.
 */
export function rectifyDue(
  cal: WorkCalendar,
  policy: DeadlinePolicy,
  cls: PatchClass,
  today: string,
  asked?: string,
): string {
  const latest = addWorkingDays(cal, today, policy.rectifyDays[cls]);
  const due = asked ?? latest;
  if (due < today) throw new BadInputError('bad_body', say('due_before_today', { due, today }), { field: 'due' });
  if (due > latest)
    throw new BadInputError(
      'bad_body',
      say('due_past_policy', { due, class: cls, days: policy.rectifyDays[cls], latest }),
      { field: 'due' },
    );
  return due;
}
