import { html, type TemplateResult } from 'lit-html';
import { ui } from '../locale.ts';

/** Working days to a deadline, as a town clerk reads it: days left, due today, or days overdue (in red). */
export function daysLeft(days: number | null): TemplateResult | string {
  if (days === null) return '–';
  if (days > 0) return ui('days_left', { days });
  if (days === 0) return html`<span class="due-today">${ui('due_today')}</span>`;
  return html`<span class="overdue-days">${ui('days_overdue', { days: -days })}</span>`;
}
