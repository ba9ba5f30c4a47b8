/**
 * 模型, for supervisors and admins: every change model in the register (issue 32) — its state, what it was
 * trained on, its last evaluation on a held-out month of the towns' verdicts (the running model beside it:
 * confirmed patches found, of them the misses the towns reported, false alarms, the score) and the shared
 * sets' pixel F1, with the rule's verdict. Admins promote a candidate (the server applies the rule and says
 * why when it refuses) and roll the running model back with a reason. Training and evaluation run on the
 * machine with the imagery (`tuban model`), not here.
 */
import { html, nothing, render, type TemplateResult } from 'lit-html';
import type { ModelsBody } from '../../api/responses.ts';
import { api, path, post } from '../api.ts';
import { errorMessage, okMessage } from '../components/message.ts';
import type { AppContext } from '../context.ts';
import { fmt, localTime } from '../labels.ts';
import { t, ui } from '../locale.ts';
import type { Navigation } from '../router.ts';

type Model = ModelsBody[number];

/** The evaluation figures as `tuban model evaluate` keeps them on the candidate (training/evaluate.ts). */
interface HeldOut {
  confirmed: number;
  found: number;
  falseFlagged: number;
  score: number;
  reported?: number;
  reportedFound?: number;
}
interface Figures {
  id: number;
  model: string;
  heldOut: HeldOut;
  validation: { set: string; pixelF1: number }[];
}
interface Evaluation {
  month: string;
  running: Figures;
  candidate: Figures;
  verdict: { promote: boolean; reasons: string[] };
}

const heldOutText = (h: HeldOut): string =>
  ui('models_heldout_value', {
    score: fmt(h.score, 3),
    found: h.found,
    confirmed: h.confirmed,
    rfound: h.reportedFound ?? 0,
    reported: h.reported ?? 0,
    false: h.falseFlagged,
    flags: h.found + h.falseFlagged,
  });

/** The last evaluation: the month, the running model's figures and this one's, the shared sets, the verdict. */
function evaluation(m: Model): TemplateResult | string {
  const ev = m.evaluation as Evaluation | null;
  if (!ev?.candidate) return '–';
  const sets = ev.candidate.validation.map((v) => {
    const r = ev.running.validation.find((x) => x.set === v.set);
    const name = v.set.split('#')[0].split('/').filter(Boolean).pop() ?? v.set;
    return html`<div>${name}：${r ? `${fmt(r.pixelF1, 3)} → ` : ''}${fmt(v.pixelF1, 3)}</div>`;
  });
  return html`<div class="model-eval">
    <div><strong>${ui('models_heldout_month', { month: ev.month })}</strong></div>
    <div>${ui('models_running_was', { model: ev.running.model })}：${heldOutText(ev.running.heldOut)}</div>
    <div>${ui('models_this_one')}：${heldOutText(ev.candidate.heldOut)}</div>
    ${sets}
    <div class=${ev.verdict.promote ? 'ok' : 'error'} data-verdict=${ev.verdict.promote ? 'promote' : 'refuse'}>
      ${ui(ev.verdict.promote ? 'models_verdict_yes' : 'models_verdict_no')}
    </div>
  </div>`;
}

function trainedOn(m: Model): string {
  const tr = m.trained_on as { since?: string; until?: string; chips?: number } | null;
  if (!tr?.since) return ui('models_registered');
  return ui('models_trained_value', { since: tr.since, until: tr.until ?? tr.since, chips: tr.chips ?? '–' });
}

export async function renderModelsPage(ctx: AppContext, nav: Navigation): Promise<void> {
  let models = await api('/api/models');
  if (nav.stale()) return;
  const view = { message: null as TemplateResult | null, busy: false };
  const admin = ctx.me.role === 'admin';
  const attempt = async (work: () => Promise<unknown>, done: () => string) => {
    view.busy = true;
    draw();
    try {
      await work();
      models = await api('/api/models');
      view.message = okMessage(done());
    } catch (err) {
      view.message = errorMessage(err);
    }
    view.busy = false;
    draw();
  };
  const label = (m: Model) => `${m.name} ${m.version}`;
  const promote = (m: Model) =>
    attempt(
      () => post(path`/api/models/${m.id}/promote`, {}),
      () => ui('models_promoted', { model: label(m) }),
    );
  const onRollback = (e: SubmitEvent) => {
    e.preventDefault();
    const reason = (new FormData(e.currentTarget as HTMLFormElement).get('reason') as string).trim();
    void attempt(
      () => post('/api/models/rollback', { reason }),
      () => ui('models_rolled_back', { model: label(models.find((m) => m.status === 'running') ?? models[0]) }),
    );
  };
  const draw = () =>
    render(
      html`<div class="card">
        <h3>${ui('models_title')}</h3>
        <p><small>${ui('models_intro')}</small></p>
        <div id="models-msg">${view.message ?? nothing}</div>
        <table id="models">
          <tr>
            <th>${ui('models_col_model')}</th>
            <th>${ui('col_status')}</th>
            <th>${ui('models_col_trained')}</th>
            <th>${ui('models_col_evaluation')}</th>
            ${admin ? html`<th></th>` : nothing}
          </tr>
          ${
            models.length
              ? [...models].reverse().map(
                  (m) =>
                    html`<tr data-model=${m.id} data-status=${m.status}>
                      <td>
                        ${label(m)}<br /><small
                          >#${m.id} ·
                          ${localTime(m.created_at)}${
                            m.promoted_at
                              ? html` · ${ui('models_promoted_at', { at: localTime(m.promoted_at) })}`
                              : nothing
                          }</small
                        >
                      </td>
                      <td>
                        ${t('model_status', m.status)}${
                          m.progress
                            ? html`<br /><small
                                  >${ui('models_progress', {
                                    step: m.progress.step,
                                    steps: m.progress.steps,
                                    share: Math.round(m.progress.share * 100),
                                  })}</small
                                >`
                            : nothing
                        }
                      </td>
                      <td>${trainedOn(m)}</td>
                      <td>${evaluation(m)}</td>
                      ${
                        admin
                          ? html`<td class="row-actions">
                              ${
                                (m.status === 'candidate' || m.status === 'retired') && m.evaluation
                                  ? html`<button data-do="promote" ?disabled=${view.busy} @click=${() => promote(m)}>
                                      ${ui('models_promote')}
                                    </button>`
                                  : nothing
                              }
                              ${
                                m.status === 'running' && models.some((x) => x.status === 'retired')
                                  ? html`<form class="inline" id="rollback-form" @submit=${onRollback}>
                                      <input
                                        name="reason"
                                        required
                                        maxlength="500"
                                        placeholder=${ui('models_rollback_reason')}
                                      />
                                      <button data-do="rollback" ?disabled=${view.busy}>
                                        ${ui('models_rollback')}
                                      </button>
                                    </form>`
                                  : nothing
                              }
                            </td>`
                          : nothing
                      }
                    </tr>`,
                )
              : html`<tr>
                  <td colspan=${admin ? 5 : 4}>${ui('models_none')}</td>
                </tr>`
          }
        </table>
      </div>`,
      ctx.main,
    );
  draw();
}
