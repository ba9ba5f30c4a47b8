/**
 * Bulk moves on a list (the map's, the to-do, the board): the rows ticked, or every patch that matches
 * the list's filter, and one of the moves the user's role makes many at a time, with what it needs (a
 * dismissal's reason, an extension's working days). Each patch is judged on its own by the server; the
 * answer says how many moved and why the others did not.
 */
import { html, nothing, type TemplateResult } from 'lit-html';
import type { MetaBody } from '../../api/responses.ts';
import { post } from '../api.ts';
import type { AppContext } from '../context.ts';
import { choices, t, ui } from '../locale.ts';
import { requestKey } from './action-form.ts';
import { errorMessage } from './message.ts';

/** The moves made many at a time (store/bulk.ts BULK_ACTIONS). */
const BULK = ['dispatch', 'dismiss', 'extend', 'escalate', 'close'] as const;

export interface BulkAnswer {
  matched: number;
  moved: number;
  refused: number;
  results: { code: string; moved: boolean; error?: { message: string } }[];
}

/** What one list's bar holds between draws. */
export interface BulkState {
  selected: Set<string>;
  /** Every patch matching the filter instead of the rows ticked. */
  all: boolean;
  action: string;
  busy: boolean;
  message: TemplateResult | null;
}

export const bulkState = (): BulkState => ({ selected: new Set(), all: false, action: '', busy: false, message: null });

/** The bulk moves the signed-in user's role may make. */
export const bulkActions = (meta: MetaBody, role: string): string[] =>
  BULK.filter((a) => meta.actions[a]?.roles.includes(role));

/** A row's tick box; a click on it selects the row, not what the row itself does on a click. */
export function tick(s: BulkState, code: string, redraw: () => void): TemplateResult {
  return html`<input
    type="checkbox"
    class="tick"
    aria-label=${ui('bulk_tick', { code })}
    .checked=${s.selected.has(code)}
    @click=${(e: Event) => e.stopPropagation()}
    @change=${(e: Event) => {
      if ((e.target as HTMLInputElement).checked) s.selected.add(code);
      else s.selected.delete(code);
      s.all = false;
      redraw();
    }}
  />`;
}

/** The header's tick box: all the rows shown, or none. */
export function tickAll(s: BulkState, codes: string[], redraw: () => void): TemplateResult {
  const all = codes.length > 0 && codes.every((c) => s.selected.has(c));
  return html`<input
    type="checkbox"
    class="tick"
    aria-label=${ui('bulk_tick_all')}
    .checked=${all}
    @click=${(e: Event) => e.stopPropagation()}
    @change=${(e: Event) => {
      for (const c of codes)
        if ((e.target as HTMLInputElement).checked) s.selected.add(c);
        else s.selected.delete(c);
      s.all = false;
      redraw();
    }}
  />`;
}

/**
 * The bar above a list: how many are chosen, "every one that matches" where the list has a filter
 * (`filter`: the bulk request's selection, a month at least, and how many match), the move and its
 * fields, and the answer of the last move. Nothing for a role without bulk moves.
 */
export function bulkBar(
  ctx: AppContext,
  s: BulkState,
  filter: { select: Record<string, string>; total: number; what: string } | null,
  redraw: () => void,
  done: () => Promise<void>,
): TemplateResult | typeof nothing {
  const actions = bulkActions(ctx.meta, ctx.me.role);
  if (!actions.length) return nothing;
  const count = s.all && filter ? filter.total : s.selected.size;
  const submit = async (e: SubmitEvent) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget as HTMLFormElement);
    const field = (name: string) => {
      const v = form.get(name);
      return typeof v === 'string' ? v.trim() : '';
    };
    const body: Record<string, unknown> = {};
    if (s.action === 'dismiss') body.reason = field('reason');
    if (s.action === 'extend')
      Object.assign(body, {
        working_days: Number(field('working_days')),
        reason: field('reason'),
        request_key: requestKey(),
      });
    if (s.action === 'escalate') body.reason = field('reason');
    if (s.action === 'close' && field('reason')) body.reason = field('reason');
    s.busy = true;
    redraw();
    try {
      const r = (await post(`/api/patches/actions/${s.action}`, {
        select: s.all && filter ? filter.select : { codes: [...s.selected] },
        body,
      })) as BulkAnswer; // the server declares no schema for this answer (server/routes/patches.ts)
      const refused = r.results.filter((x) => !x.moved && x.error);
      s.message = html`<div class=${refused.length ? 'warn' : 'ok'} id="bulk-answer">
        ${ui('bulk_done', { action: t('action', s.action), moved: r.moved, refused: r.refused })}
        ${
          refused.length
            ? html`<ul>
                ${refused.slice(0, 20).map((x) => html`<li>${x.code}：${x.error!.message}</li>`)}
                ${refused.length > 20 ? html`<li>${ui('bulk_more', { n: refused.length - 20 })}</li>` : nothing}
              </ul>`
            : nothing
        }
      </div>`;
      s.selected.clear();
      s.all = false;
      await done();
    } catch (err) {
      s.message = errorMessage(err);
    } finally {
      s.busy = false;
      redraw();
    }
  };
  const reasonText = (required: boolean) =>
    html`<label
      >${t('field', 'reason')}<input
        name="reason"
        maxlength="2000"
        ?required=${required}
        placeholder=${ui('bulk_reason')}
    /></label>`;
  const fields =
    s.action === 'dismiss'
      ? html`<label
          >${t('field', 'reason')}<select name="reason" required>
            <option value="">${ui('bulk_choose')}</option>
            ${choices('dismiss_reason').map(([v, w]) => html`<option value=${v}>${w}</option>`)}
          </select></label
        >`
      : s.action === 'extend'
        ? html`<label
              >${t('field', 'working_days')}<input
                name="working_days"
                type="number"
                min="1"
                max="120"
                required /></label
            >${reasonText(true)}`
        : s.action === 'escalate'
          ? reasonText(true)
          : s.action === 'close'
            ? reasonText(false)
            : nothing;
  return html`<form class="bulkbar" id="bulk" @submit=${submit}>
      <span id="bulk-count">${count ? ui('bulk_selected', { n: count }) : ui('bulk_pick')}</span>
      ${
        filter && filter.total > 0
          ? html`<label class="inline"
              ><input
                type="checkbox"
                id="bulk-all"
                .checked=${s.all}
                @change=${(e: Event) => {
                  s.all = (e.target as HTMLInputElement).checked;
                  redraw();
                }}
              />${ui('bulk_all', { total: filter.total, what: filter.what })}</label
            >`
          : nothing
      }
      <label
        >${ui('bulk_move')}<select
          name="action"
          id="bulk-action"
          .value=${s.action}
          @change=${(e: Event) => {
            s.action = (e.target as HTMLSelectElement).value;
            redraw();
          }}
        >
          <option value="">${ui('bulk_choose')}</option>
          ${actions.map((a) => html`<option value=${a} ?selected=${a === s.action}>${t('action', a)}</option>`)}
        </select></label
      >
      ${fields}
      <button type="submit" id="bulk-apply" ?disabled=${!count || !s.action || s.busy}>${ui('bulk_apply')}</button>
    </form>
    ${s.message ?? nothing}`;
}
