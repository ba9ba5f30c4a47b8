/** The analyst's batches: the recent ones, and one batch's scenes and parts, live from BullMQ while it runs. */
import { html, render } from 'lit-html';
import type { BatchListItem, BatchProgressBody } from '../../api/responses.ts';
import { api } from '../api.ts';
import { errorMessage } from '../components/message.ts';
import { localTime } from '../labels.ts';
import type { AppContext } from '../context.ts';
import { t, ui } from '../locale.ts';
import { href, navigate, type Navigation } from '../router.ts';

/** How often a running batch's page asks for progress. */
const POLL_MS = 2000;

const batchList = (rows: BatchListItem[], chosen: number | null) =>
  html`<table>
    <tr>
      <th>#</th>
      <th>${ui('col_month')}</th>
      <th>${ui('batches_col_baseline')}</th>
      <th>${ui('col_status')}</th>
      <th>${ui('batches_col_tiles')}</th>
      <th>${ui('batches_col_failed')}</th>
      <th>${ui('batches_col_new')}</th>
      <th>${ui('batches_col_started')}</th>
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
                <td>${t('batch_status', b.status)}</td>
                <td>${b.vectorized + b.failed}/${b.tiles}</td>
                <td>${b.failed}</td>
                <td>${b.patches?.new ?? '–'}</td>
                <td>${localTime(b.created_at)}</td>
              </tr>`,
          )
        : html`<tr>
            <td colspan="8">${ui('batches_none')}</td>
          </tr>`
    }
  </table>`;

function progress(p: BatchProgressBody) {
  const b = p.batch;
  const done = b.vectorized + b.failed;
  const jobs = p.queueAvailable
    ? Object.entries(p.jobs)
        .map(([k, v]) => `${t('job_state', k)} ${v}`)
        .join(', ') || ui('batches_no_jobs')
    : ui('batches_queue_unreachable');
  return html`<h3>
      ${ui('batches_heading', { id: b.id, month: b.month, baseline: b.baseline_month })} ·
      <span id="batch-status" data-status=${b.status}>${t('batch_status', b.status)}</span>
    </h3>
    <div class="progress" title="${done}/${b.tiles}">
      <div style="width:${b.tiles ? (100 * done) / b.tiles : 0}%"></div>
    </div>
    <p>
      ${ui('batches_progress', {
        done,
        tiles: b.tiles,
        ok: b.vectorized,
        failed: b.failed,
        queued: b.queued,
        diff: p.diff ? t('job_state', p.diff) : '–',
        jobs,
        model: b.model_name,
        version: b.model_version,
      })}
    </p>
    <table id="batch-tiles">
      <tr>
        <th>${ui('batches_col_tile')}</th>
        <th>${ui('col_status')}</th>
        <th>${ui('batches_col_part_jobs')}</th>
        <th>${ui('batches_col_parts')}</th>
        <th>${ui('batches_col_reason')}</th>
      </tr>
      ${p.tiles.map(
        (tile) =>
          html`<tr>
            <td><small>${tile.path}</small></td>
            <td>${t('tile_status', tile.status)}</td>
            <td>${tile.part_jobs ? jobsText(tile.part_jobs) : '–'}</td>
            <td>${tile.parts_done}/${tile.parts}</td>
            <td>${tile.error_code ? html`<strong>${tile.error_code}</strong> ${tile.error_message}` : ''}</td>
          </tr>`,
      )}
    </table>`;
}

export async function renderBatchesPage(ctx: AppContext, nav: Navigation): Promise<void> {
  let list = await api('/api/batches');
  if (nav.stale()) return;
  const asked = nav.route.params.id;
  const chosen = asked ? Number(asked) : list[0] ? Number(list[0].id) : null;
  let detail: BatchProgressBody | null = null;
  let failure: unknown = null;
  const draw = () =>
    render(
      html`<div class="grid2">
        <div class="card">
          <h3>${ui('batches_title')}</h3>
          <div id="batches">${batchList(list, chosen)}</div>
        </div>
        <div class="card" id="batch-detail">
          ${
            failure
              ? errorMessage(failure)
              : detail
                ? progress(detail)
                : html`<h3>${ui('batches_progress_title')}</h3>
                    <p>${ui('batches_pick')}</p>`
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
      [detail, list] = await Promise.all([api(`/api/batches/${chosen}`), api('/api/batches')]);
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

/** BullMQ's job states as the server counts them ("active 2, completed 1", or one state alone), in words. */
function jobsText(s: string): string {
  return s
    .split(', ')
    .map((part) => {
      const [state, n] = part.split(' ');
      return n ? `${t('job_state', state)} ${n}` : t('job_state', state);
    })
    .join('，');
}
