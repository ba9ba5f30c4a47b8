import { html, type TemplateResult } from 'lit-html';
import { ui } from '../locale.ts';

/** Working days to a deadline, as a town clerk reads it: days left, due today, or days overdue (in red). */
export function daysLeft(days: number | null): TemplateResult | string {
  if (days === null) return '–';
  if (days > 0) return ui('days_left', { days });
  if (days === 0) return html`<span class="due-today">${ui('due_today')}</span>`;
  return html`<span class="overdue-days">${ui('days_overdue', { days: -days })}</span>`;
}

/**
 * A deadline's date, marked provisional (暂定) when it lies past the working-day calendar's last year:
 * it was counted on weekends alone and may fall on a holiday not yet published.
 */
export function dueText(due: string | null | undefined, provisional: boolean | undefined): TemplateResult | string {
  if (!due) return '–';
  return provisional
    ? html`${due}<span class="provisional" title=${ui('due_provisional_title')}>${ui('due_provisional')}</span>`
    : due;
}
