/** The supervisor's board: deadlines by town, new patches per month, the month's town ranking. */
import { html, render, type TemplateResult } from 'lit-html';
import type { BoardBody, MonthlyReportBody } from '../../api/reports.ts';
import { api, download } from '../api.ts';
import { daysLeft, dueText } from '../components/deadline.ts';
import { bulkActions, bulkBar, bulkState, tick } from '../components/bulk-bar.ts';
import { trendChart } from '../components/trend-chart.ts';
import { monthsOf, pickMonth, type AppContext } from '../context.ts';
import { fmt } from '../labels.ts';
import { t, ui } from '../locale.ts';
import { href, navigate, type Navigation } from '../router.ts';

type BoardItem = BoardBody['towns'][number]['due_soon'][number];

type LookbackItem = BoardBody['towns'][number]['reported_standing'][number];

/** Ordered demolitions with their latest imagery check: the code, the measure, the month and the result. */
const checked = (items: LookbackItem[]) =>
  items.length
    ? items.map(
        (i, n) =>
          html`${n ? html`<br />` : ''}<a href=${href(`/patch/${encodeURIComponent(i.code)}`)}>${i.code}</a>
            <small
              >${t('status', i.status)} · ${t('measure', i.measure)} · ${i.imagery_check?.month}
              ${t('lookback', i.imagery_check?.result)}</small
            >`,
      )
    : '–';

/** A list of deadlines: each code with its deadline and the working days left, ticked for a bulk move where `tickOf` is given. */
const codes = (items: BoardItem[], total: number, tickOf?: (code: string) => TemplateResult) =>
  items.length
    ? html`${items.map(
        (i, n) =>
          html`${n ? html`<br />` : ''}${tickOf ? tickOf(i.code) : ''}<a
              href=${href(`/patch/${encodeURIComponent(i.code)}`)}
              >${i.code}</a
            >
            <small
              >${t('deadline', i.deadline)} ${dueText(i.due, i.due_provisional)} · ${daysLeft(i.days_left)}</small
            >`,
      )}${total > items.length ? html`<br /><small class="more">${ui('board_more', { total })}</small>` : ''}`
    : '–';

/** A town's or the city's figures in the ranking, in the order of its columns (one list, so both rows agree). */
const figures = (c: MonthlyReportBody['city'] | MonthlyReportBody['towns'][number]) => [
  c.new_patches,
  c.new_extension,
  c.new_on_building,
  fmt(c.new_area_m2),
  `${c.change_from_previous > 0 ? '+' : ''}${c.change_from_previous}`,
  c.verified,
  c.unverified,
  c.unverified_overdue,
  c.illegal,
  c.rectified,
  c.overdue,
  c.escalated,
  'penalty' in c ? fmt(Number(c.penalty), 1) : '',
];

export async function renderBoardPage(ctx: AppContext, nav: Navigation): Promise<void> {
  const month = pickMonth(ctx, nav.route.query.get('month'));
  if (!month) {
    render(html`<div class="card">${ui('board_no_months')}</div>`, ctx.main);
    return;
  }
  const [first, report, trend] = await Promise.all([
    api('/api/reports/board?days=3'),
    api(`/api/reports/monthly?month=${month}`),
    api(`/api/reports/trend?month=${month}&months=12`),
  ]);
  if (nav.stale()) return;
  const city = report.city;
  let board = first;
  const bulk = bulkState();
  const bulkable = bulkActions(ctx.meta, ctx.me.role).length > 0;
  const tickOf = bulkable ? (code: string) => tick(bulk, code, draw) : undefined;
  const reload = async () => {
    board = await api('/api/reports/board?days=3');
  };
  function draw(): void {
    const deadlines = board.towns.filter((x) => x.due_soon.length + x.overdue.length + x.escalated.length > 0);
    const looked = board.towns.filter((x) => x.reported_standing.length + x.gone_unreported.length > 0);
    render(
      html`<div class="card">
          <label
            >${ui('col_month')}
            <select
              id="board-month"
              @change=${(e: Event) => navigate(href('/board', { month: (e.target as HTMLSelectElement).value }))}
            >
              ${monthsOf(ctx).map((m) => html`<option ?selected=${m === month}>${m}</option>`)}
            </select></label
          >
          <span class="aside"
            >${ui('board_window', { today: board.today, days: board.working_days, due_by: board.due_by })}</span
          >
        </div>
        <div class="grid2">
          <div class="card">
            <h3>${ui('board_deadlines')}</h3>
            ${deadlines.length ? bulkBar(ctx, bulk, null, draw, reload) : ''}
            <table id="board-deadlines">
              <tr>
                <th>${ui('col_town')}</th>
                <th>${ui('board_due_soon')}</th>
                <th>${ui('col_overdue')}</th>
                <th>${ui('col_escalated')}</th>
              </tr>
              ${
                deadlines.length
                  ? deadlines.map(
                      (town) =>
                        html`<tr>
                          <td>${town.town_name}<br /><small>${town.town_code}</small></td>
                          <td>${codes(town.due_soon, town.due_soon_total, tickOf)}</td>
                          <td>${codes(town.overdue, town.overdue_total, tickOf)}</td>
                          <td>${codes(town.escalated, town.escalated_total, tickOf)}</td>
                        </tr>`,
                    )
                  : html`<tr>
                      <td colspan="4">${ui('board_nothing_due')}</td>
                    </tr>`
              }
            </table>
          </div>
          <div class="card">
            <h3>${ui('board_trend')}</h3>
            ${trendChart(trend)}
          </div>
        </div>
        <div class="card">
          <h3>${ui('board_lookback')}</h3>
          <p class="muted">${ui('board_lookback_rule')}</p>
          <table id="board-lookback">
            <tr>
              <th>${ui('col_town')}</th>
              <th>${ui('board_reported_standing')}</th>
              <th>${ui('board_gone_unreported')}</th>
            </tr>
            ${
              looked.length
                ? looked.map(
                    (town) =>
                      html`<tr>
                        <td>${town.town_name}<br /><small>${town.town_code}</small></td>
                        <td>${checked(town.reported_standing)}</td>
                        <td>${checked(town.gone_unreported)}</td>
                      </tr>`,
                  )
                : html`<tr>
                    <td colspan="3">${ui('board_lookback_none')}</td>
                  </tr>`
            }
          </table>
        </div>
        <div class="card">
          <h3>${ui('board_ranking', { month: report.month })}</h3>
          <p class="muted">${ui('board_ranking_rule')}</p>
          <button
            id="ranking-xlsx"
            @click=${() => void download(`/api/reports/monthly.xlsx?month=${encodeURIComponent(report.month)}`)}
          >
            ${ui('board_ranking_xlsx')}
          </button>
          ${(['xlsx', 'pdf'] as const).map(
            (format) =>
              html`<button
                id=${`yearly-${format}`}
                @click=${() => void download(`/api/reports/yearly.${format}?year=${report.month.slice(0, 4)}`)}
              >
                ${ui(format === 'xlsx' ? 'board_yearly_xlsx' : 'board_yearly_pdf', { year: report.month.slice(0, 4) })}
              </button>`,
          )}
          <table id="ranking">
            <tr>
              <th>#</th>
              <th>${ui('col_town')}</th>
              <th>${ui('board_new')}</th>
              <th>${t('relation', 'extension')}</th>
              <th>${t('relation', 'on_building')}</th>
              <th>${ui('col_area_m2')}</th>
              <th>${ui('board_vs_previous', { month: report.previous_month })}</th>
              <th>${ui('board_verified')}</th>
              <th>${ui('board_unverified')}</th>
              <th>${ui('board_overdue_unverified')}</th>
              <th>${ui('board_illegal')}</th>
              <th>${ui('board_rectified')}</th>
              <th>${ui('col_overdue')}</th>
              <th>${ui('col_escalated')}</th>
              <th>${ui('board_penalty')}</th>
            </tr>
            ${report.towns.map(
              (town) =>
                html`<tr class=${town.town_code === ctx.me.townCode ? 'selected' : ''}>
                  <td>${town.rank}</td>
                  <td>
                    ${town.town_name}
                    ${
                      town.zero_growth
                        ? html`<span class="badge zero" title=${ui('board_zero_growth_title')}
                            >${ui('board_zero_growth')}</span
                          >`
                        : ''
                    }
                  </td>
                  ${figures(town).map((v) => html`<td>${v}</td>`)}
                </tr>`,
            )}
            <tr>
              <th></th>
              <th>${ui('board_city')}</th>
              ${figures(city).map((v) => html`<th>${v}</th>`)}
            </tr>
          </table>
        </div>`,
      ctx.main,
    );
  }
  draw();
}
