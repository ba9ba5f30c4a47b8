/**
 * 我的待办: every patch waiting on the user's move, across months, the nearest deadline first, with
 * working days left or overdue. A town user's landing page: what the office owes, not one month's map.
 */
import { html, render } from 'lit-html';
import type { TodoBody } from '../../api/reports.ts';
import { api } from '../api.ts';
import { statusBadge } from '../components/badges.ts';
import { daysLeft } from '../components/deadline.ts';
import type { AppContext } from '../context.ts';
import { fmt } from '../labels.ts';
import { t } from '../locale.ts';
import { href, navigate, type Navigation } from '../router.ts';

const DEADLINE = { verification: '核查 verify', rectification: '整改 rectify' } as const;

export async function renderTodoPage(ctx: AppContext, nav: Navigation): Promise<void> {
  const todo = await api<TodoBody>('/api/todo');
  if (nav.stale()) return;
  const open = (code: string) => navigate(href(`/patch/${encodeURIComponent(code)}`));
  const overdue = todo.patches.filter((p) => p.days_left !== null && p.days_left < 0).length;
  render(
    html`<div class="card">
      <h3>我的待办 My to-do <small>(${todo.patches.length}; 逾期 overdue ${overdue}; today ${todo.today})</small></h3>
      ${
        todo.patches.length
          ? html`<table id="todo-table">
              <tr>
                <th>图斑编号 Code</th>
                <th>月份 Month</th>
                ${ctx.me.role === 'town' ? '' : html`<th>镇街 Town</th>`}
                <th>状态 Status</th>
                <th>待办 To do</th>
                <th>期限 Due</th>
                <th>剩余 Days left</th>
                <th>面积 m²</th>
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
                    <td><a href=${href(`/patch/${encodeURIComponent(p.code)}`)}>${p.code}</a></td>
                    <td>${p.month}</td>
                    ${ctx.me.role === 'town' ? '' : html`<td>${p.town_name ?? ''}</td>`}
                    <td>${statusBadge(p)}</td>
                    <td>${p.actions.map((a) => t('action', a)).join('、')}</td>
                    <td>${p.due ? `${p.deadline ? DEADLINE[p.deadline] : ''} ${p.due}` : '–'}</td>
                    <td class="days">${daysLeft(p.days_left)}</td>
                    <td>${fmt(p.area_m2)}</td>
                  </tr>`,
              )}
            </table>`
          : html`<p id="todo-empty">没有待办 Nothing waits on you.</p>`
      }
    </div>`,
    ctx.main,
  );
}
