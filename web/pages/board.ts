/** The supervisor's board: deadlines by town, new patches per month, the month's town ranking. */
import { html, render } from 'lit-html';
import type { BoardBody, MonthlyReportBody, TrendBody } from '../../api/reports.ts';
import { api } from '../api.ts';
import { daysLeft } from '../components/deadline.ts';
import { trendChart } from '../components/trend-chart.ts';
import { monthsOf, pickMonth, type AppContext } from '../context.ts';
import { fmt } from '../labels.ts';
import { href, navigate, type Navigation } from '../router.ts';

type BoardItem = BoardBody['towns'][number]['due_soon'][number];

const codes = (items: BoardItem[]) =>
  items.length
    ? items.map(
        (i, n) =>
          html`${n ? html`<br />` : ''}<a href=${href(`/patch/${encodeURIComponent(i.code)}`)}>${i.code}</a>
            <small>${i.deadline === 'verification' ? '核查' : '整改'} ${i.due} · ${daysLeft(i.days_left)}</small>`,
      )
    : '–';

export async function renderBoardPage(ctx: AppContext, nav: Navigation): Promise<void> {
  const month = pickMonth(ctx, nav.route.query.get('month'));
  if (!month) {
    render(html`<div class="card">No months yet.</div>`, ctx.main);
    return;
  }
  const [board, report, trend] = await Promise.all([
    api<BoardBody>('/api/reports/board?days=3'),
    api<MonthlyReportBody>(`/api/reports/monthly?month=${month}`),
    api<TrendBody>(`/api/reports/trend?month=${month}&months=12`),
  ]);
  if (nav.stale()) return;
  const city = report.city;
  render(
    html`<div class="card">
        <label
          >月份 Month
          <select
            id="board-month"
            @change=${(e: Event) => navigate(href('/board', { month: (e.target as HTMLSelectElement).value }))}
          >
            ${monthsOf(ctx).map((m) => html`<option ?selected=${m === month}>${m}</option>`)}
          </select></label
        >
        <span class="aside"
          >today ${board.today}; due within ${board.working_days} working days: by ${board.due_by}</span
        >
      </div>
      <div class="grid2">
        <div class="card">
          <h3>期限 Deadlines by town</h3>
          <table id="board-deadlines">
            <tr>
              <th>镇街 Town</th>
              <th>即将到期 Due soon</th>
              <th>逾期 Overdue</th>
              <th>督办 Escalated</th>
            </tr>
            ${
              board.towns.length
                ? board.towns.map(
                    (t) =>
                      html`<tr>
                        <td>${t.town_name}<br /><small>${t.town_code}</small></td>
                        <td>${codes(t.due_soon)}</td>
                        <td>${codes(t.overdue)}</td>
                        <td>${codes(t.escalated)}</td>
                      </tr>`,
                  )
                : html`<tr>
                    <td colspan="4">没有到期、逾期或督办的图斑 Nothing due, overdue or escalated.</td>
                  </tr>`
            }
          </table>
        </div>
        <div class="card">
          <h3>新增图斑 New patches per month</h3>
          ${trendChart(trend)}
        </div>
      </div>
      <div class="card">
        <h3>${report.month} 镇街排名 Town ranking (新增两违零增长 zero growth marked)</h3>
        <p class="muted">
          零增长：本月新增图斑全部核查且无违法。排名：零增长在前，其次违法与逾期未核查越少越前。 Zero growth: every new
          patch verified, none illegal; then fewer illegal and overdue-unverified patches rank higher.
        </p>
        <table id="ranking">
          <tr>
            <th>#</th>
            <th>镇街 Town</th>
            <th>新增 New</th>
            <th>面积 m²</th>
            <th>较上月 vs ${report.previous_month}</th>
            <th>已核查 Verified</th>
            <th>未核查 Unverified</th>
            <th>逾期未核查 Overdue unverified</th>
            <th>违法 Illegal</th>
            <th>已整改 Rectified</th>
            <th>逾期 Overdue</th>
            <th>督办 Escalated</th>
          </tr>
          ${report.towns.map(
            (t) =>
              html`<tr class=${t.town_code === ctx.me.townCode ? 'selected' : ''}>
                <td>${t.rank}</td>
                <td>
                  ${t.town_name}
                  ${
                    t.zero_growth
                      ? html`<span class="badge zero" title="every new patch of the month verified, none illegal"
                          >零增长 zero growth</span
                        >`
                      : ''
                  }
                </td>
                <td>${t.new_patches}</td>
                <td>${fmt(t.new_area_m2)}</td>
                <td>${t.change_from_previous > 0 ? '+' : ''}${t.change_from_previous}</td>
                <td>${t.verified}</td>
                <td>${t.unverified}</td>
                <td>${t.unverified_overdue}</td>
                <td>${t.illegal}</td>
                <td>${t.rectified}</td>
                <td>${t.overdue}</td>
                <td>${t.escalated}</td>
              </tr>`,
          )}
          <tr>
            <th></th>
            <th>全市 City</th>
            <th>${city.new_patches}</th>
            <th>${fmt(city.new_area_m2)}</th>
            <th>${city.change_from_previous}</th>
            <th>${city.verified}</th>
            <th>${city.unverified}</th>
            <th>${city.unverified_overdue}</th>
            <th>${city.illegal}</th>
            <th>${city.rectified}</th>
            <th>${city.overdue}</th>
            <th>${city.escalated}</th>
          </tr>
        </table>
      </div>`,
    ctx.main,
  );
}
