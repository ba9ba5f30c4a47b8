import { say } from '../i18n/say.ts';
import { BadInputError } from './errors.ts';

/** A month as tuban names it everywhere: YYYY-MM (the month of a batch, a report, a patch). */
export const MONTH_PATTERN = /^\d{4}-(0[1-9]|1[0-2])$/;

const isMonth = (v: string): boolean => MONTH_PATTERN.test(v);

/** The month, or a BadInputError naming where it came from (`--month`, `query month`, …). */
export function checkMonth(value: string, what: string): string {
  if (!isMonth(value))
    throw new BadInputError('bad_month', say('month_invalid', { what, value: value.slice(0, 40) }), {
      field: what,
    });
  return value;
}

/** The month `n` months after `month` (n may be negative): addMonths('2024-01', -1) is '2023-12'. */
export function addMonths(month: string, n: number): string {
  const [y, m] = checkMonth(month, 'month').split('-').map(Number);
  const d = new Date(Date.UTC(y, m - 1 + n, 1));
  return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
}
