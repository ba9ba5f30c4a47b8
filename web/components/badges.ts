import { html, nothing, type TemplateResult } from 'lit-html';
import { STATUS_COLOUR } from '../labels.ts';
import { t, ui } from '../locale.ts';

/** A patch's state, and whether it is overdue or escalated. */
export function statusBadge(p: { status: string; overdue_since?: string | null; escalated?: boolean }): TemplateResult {
  return html`<span class="badge" style="border:1px solid ${STATUS_COLOUR[p.status] ?? '#999'}"
      >${t('status', p.status)}</span
    >${p.overdue_since ? html` <span class="badge overdue">${ui('overdue')}</span>` : nothing}${
      p.escalated ? html` <span class="badge escalated">${ui('escalated')}</span>` : nothing
    }`;
}
