import { html, type TemplateResult } from 'lit-html';

/** Working days to a deadline, as a town clerk reads it: days left, due today, or days overdue (in red). */
export function daysLeft(days: number | null): TemplateResult | string {
  if (days === null) return '–';
  if (days > 0) return `剩 ${days} 个工作日 ${days} working day(s) left`;
  if (days === 0) return html`<span class="due-today">今日到期 due today</span>`;
  return html`<span class="overdue-days">逾期 ${-days} 个工作日 ${-days} working day(s) overdue</span>`;
}
