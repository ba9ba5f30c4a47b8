/** The analyst's batches: the recent ones, and one batch's scenes and parts, live from BullMQ while it runs. */
import { html, render } from 'lit-html';
import type { BatchListItem, BatchProgressBody } from '../../api/responses.ts';
import { api } from '../api.ts';
import { errorMessage } from '../components/message.ts';
import { localTime } from '../labels.ts';
import type { AppContext } from '../context.ts';
import { href, navigate, type Navigation } from '../router.ts';

/** How often a running batch's page asks for progress. */
const POLL_MS = 2000;

const batchList = (rows: BatchListItem[], chosen: number | null) =>
  html`<table>
    <tr>
      <th>#</th>
      <th>Month</th>
      <th>Baseline</th>
      <th>Status</th>
      <th>Tiles</th>
      <th>Failed</th>
      <th>New patches</th>
      <th>Started</th>
    </tr>
    ${
      rows.length
        ? rows.map(
            (b) =>
              html`<tr
                class="clickable ${Number(b.id) === chosen ? 'selected' : ''}"
                data-batch=${b.id}
                @click=${() => navigate(href(`/batches/${b.id}`))}
              >
                <td>${b.id}</td>
                <td>${b.month}</td>
                <td>${b.baseline_month}</td>
                <td>${b.status}</td>
                <td>${b.vectorized + b.failed}/${b.tiles}</td>
                <td>${b.failed}</td>
                <td>${b.patches?.new ?? '–'}</td>
                <td>${localTime(b.created_at)}</td>
              </tr>`,
          )
        : html`<tr>
            <td colspan="8">No batch yet.</td>
          </tr>`
    }
  </table>`;

function progress(p: BatchProgressBody) {
  const b = p.batch;
  const done = b.vectorized + b.failed;
  const jobs = p.queueAvailable
    ? Object.entries(p.jobs)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ') || 'no jobs held'
    : 'not reachable (database state only)';
  return html`<h3>
      批次 Batch ${b.id} · ${b.month} vs ${b.baseline_month} · <span id="batch-status">${b.status}</span>
    </h3>
    <div class="progress" title="${done}/${b.tiles}">
      <div style="width:${b.tiles ? (100 * done) / b.tiles : 0}%"></div>
    </div>
    <p>
      ${done}/${b.tiles} tiles done (${b.vectorized} ok, ${b.failed} failed, ${b.queued} queued); diff job:
      ${p.diff ?? '–'}; BullMQ: ${jobs}; model ${b.model_name} ${b.model_version}
    </p>
    <table id="batch-tiles">
      <tr>
        <th>Tile</th>
        <th>Status</th>
        <th>Part jobs</th>
        <th>Parts</th>
        <th>Reason</th>
      </tr>
      ${p.tiles.map(
        (t) =>
          html`<tr>
            <td><small>${t.path}</small></td>
            <td>${t.status}</td>
            <td>${t.part_jobs ?? '–'}</td>
            <td>${t.parts_done}/${t.parts}</td>
            <td>${t.error_code ? html`<strong>${t.error_code}</strong> ${t.error_message}` : ''}</td>
          </tr>`,
      )}
    </table>`;
}

export async function renderBatchesPage(ctx: AppContext, nav: Navigation): Promise<void> {
  let list = await api<BatchListItem[]>('/api/batches');
  if (nav.stale()) return;
  const asked = nav.route.params.id;
  const chosen = asked ? Number(asked) : list[0] ? Number(list[0].id) : null;
  let detail: BatchProgressBody | null = null;
  let failure: unknown = null;
  const draw = () =>
    render(
      html`<div class="grid2">
        <div class="card">
          <h3>批次 Batches</h3>
          <div id="batches">${batchList(list, chosen)}</div>
        </div>
        <div class="card" id="batch-detail">
          ${
            failure
              ? errorMessage(failure)
              : detail
                ? progress(detail)
                : html`<h3>进度 Progress</h3>
                    <p>选择批次 Pick a batch.</p>`
          }
        </div>
      </div>`,
      ctx.main,
    );
  draw();
  if (chosen === null) return;
  let timer = 0;
  nav.onLeave(() => window.clearTimeout(timer));
  const poll = async () => {
    try {
      [detail, list] = await Promise.all([
        api<BatchProgressBody>(`/api/batches/${chosen}`),
        api<BatchListItem[]>('/api/batches'),
      ]);
      failure = null;
    } catch (err) {
      failure = err;
    }
    if (nav.stale()) return;
    draw();
    if (detail && ['queued', 'running'].includes(detail.batch.status))
      timer = window.setTimeout(() => void poll(), POLL_MS);
  };
  await poll();
}
