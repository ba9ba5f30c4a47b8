/**
 * 我的待办: every patch waiting on the user's move, across months, the nearest deadline first, with
 * working days left or overdue. A town user's landing page: what the office owes, not one month's map.
 */
import { html, nothing, render } from 'lit-html';
import { api } from '../api.ts';
import { statusBadge } from '../components/badges.ts';
import { bulkActions, bulkBar, bulkState, tick, tickAll } from '../components/bulk-bar.ts';
import { daysLeft, dueText } from '../components/deadline.ts';
import type { AppContext } from '../context.ts';
import { fmt } from '../labels.ts';
import { t, ui } from '../locale.ts';
import { href, navigate, type Navigation } from '../router.ts';

export async function renderTodoPage(ctx: AppContext, nav: Navigation): Promise<void> {
  // a page at a time: an analyst's to-do can be tens of thousands of patches
  let todo = await api('/api/todo');
  if (nav.stale()) return;
  let more = false;
  const showMore = async () => {
    more = true;
    draw();
    try {
      // from where this page ended (the list may have moved since: a cursor neither skips nor repeats)
      const next = todo.next_after
        ? await api(`/api/todo?after=${encodeURIComponent(todo.next_after)}&limit=${todo.limit}`)
        : await api(`/api/todo?offset=${todo.patches.length}&limit=${todo.limit}`);
      todo = { ...next, patches: [...todo.patches, ...next.patches] };
    } finally {
      more = false;
      draw();
    }
  };
  const open = (code: string) => navigate(href(`/patch/${encodeURIComponent(code)}`));
  const bulk = bulkState();
  const bulkable = bulkActions(ctx.meta, ctx.me.role).length > 0;
  const reload = async () => {
    todo = await api(`/api/todo?limit=${Math.max(todo.limit, todo.patches.length)}`);
  };
  const draw = () => {
    render(
      html`<div class="card">
        <h3>
          ${ui('todo_title')}
          <small>${ui('todo_summary', { count: todo.total, overdue: todo.overdue, today: todo.today })}</small>
        </h3>
        ${todo.patches.length ? bulkBar(ctx, bulk, null, draw, reload) : nothing}
        ${
          todo.patches.length
            ? html`<table id="todo-table">
                  <tr>
                    ${
                      bulkable
                        ? html`<th>
                            ${tickAll(
                              bulk,
                              todo.patches.map((p) => p.code),
                              draw,
                            )}
                          </th>`
                        : nothing
                    }
                    <th>${ui('col_code')}</th>
                    <th>${ui('col_month')}</th>
                    ${ctx.me.role === 'town' ? '' : html`<th>${ui('col_town')}</th>`}
                    <th>${ui('col_status')}</th>
                    <th>${ui('todo_col_actions')}</th>
                    <th>${ui('col_due')}</th>
                    <th>${ui('todo_col_days_left')}</th>
                    <th>${ui('col_area_m2')}</th>
                  </tr>
                  ${todo.patches.map(
                    (p) =>
                      html`<tr
                        class="clickable"
                        tabindex="0"
                        data-code=${p.code}
                        @click=${() => open(p.code)}
                        @keydown=${(e: KeyboardEvent) => {
                          if (e.key === 'Enter') open(p.code);
                        }}
                      >
                        ${bulkable ? html`<td class="tick">${tick(bulk, p.code, draw)}</td>` : nothing}
                        <td class="code"><a href=${href(`/patch/${encodeURIComponent(p.code)}`)}>${p.code}</a></td>
                        <td class="month">${p.month}</td>
                        ${ctx.me.role === 'town' ? '' : html`<td class="town">${p.town_name ?? ''}</td>`}
                        <td class="status">${statusBadge(p)}</td>
                        <td class="todo-actions">${ui('todo_actions', { actions: p.actions })}</td>
                        <td class="due">
                          ${p.due ? html`${t('deadline', p.deadline)} ${dueText(p.due, p.due_provisional)}` : '–'}
                        </td>
                        <td class="days">${daysLeft(p.days_left)}</td>
                        <td class="area">${fmt(p.area_m2)} m²</td>
                      </tr>`,
                  )}
                </table>
                ${
                  todo.patches.length < todo.total
                    ? html`<button type="button" id="todo-more" ?disabled=${more} @click=${() => void showMore()}>
                        ${ui('todo_more', { shown: todo.patches.length, total: todo.total })}
                      </button>`
                    : nothing
                }`
            : html`<p id="todo-empty">${ui('todo_empty')}</p>`
        }
      </div>`,
      ctx.main,
    );
  };
  draw();
}
