/**
 * One patch: before/after chips, attributes, observations across months, the actions the user's role
 * may take now (forms from the API's schemas), history, notes and evidence.
 */
import { html, nothing, render, type TemplateResult } from 'lit-html';
import type { UiKey } from '../../i18n/say.ts';
import { api, download, path, post, QueuedError, showImage } from '../api.ts';
import { actionForm, field, requestKey, type Choice } from '../components/action-form.ts';
import { statusBadge } from '../components/badges.ts';
import { ACTION_HINTS } from '../components/hints.ts';
import { historySentence } from '../components/history.ts';
import { distanceM, locationCard } from '../components/location.ts';
import { attributes, checkText, summarise } from '../components/patch-facts.ts';
import { evidenceByStage, photosNeeded } from '../components/evidence.ts';
import { errorMessage, okMessage } from '../components/message.ts';
import type { AppContext } from '../context.ts';
import { bytes, fmt, localTime } from '../labels.ts';
import { t, ui } from '../locale.ts';
import { cameFrom, type Navigation } from '../router.ts';
import { daysLeft, dueText } from '../components/deadline.ts';

/** How a month's observation of the patch came about (patch_observation.kind). */
const OBSERVATION_KINDS: Record<string, UiKey> = { new: 'patch_obs_new', redetected: 'patch_obs_redetected' };

export async function renderPatchPage(ctx: AppContext, nav: Navigation): Promise<void> {
  const code = nav.route.params.code;
  const base = `/api/patches/${encodeURIComponent(code)}` as const;
  let p = await api(base);
  if (nav.stale()) return;
  const view = {
    open: null as { action: string; key: string } | null,
    message: null as TemplateResult | null,
    here: null as { distanceM?: number; error?: string } | null,
    towns: null as Choice[] | null,
  };
  const locate = () => {
    const centre: [number, number] = [p.lon, p.lat];
    if (!navigator.geolocation) {
      view.here = { error: ui('location_unsupported') };
      return draw();
    }
    navigator.geolocation.getCurrentPosition(
      (pos) => {
        view.here = { distanceM: distanceM([pos.coords.longitude, pos.coords.latitude], centre) };
        draw();
      },
      (err) => {
        // said in the clerk's words, not the browser's ("User denied Geolocation")
        const why = { 1: 'location_denied', 2: 'location_unavailable', 3: 'location_timeout' } as const;
        view.here = {
          error: err.code in why ? ui(why[err.code as 1 | 2 | 3]) : ui('location_failed', { reason: err.message }),
        };
        draw();
      },
      { enableHighAccuracy: true, timeout: 15_000 },
    );
  };
  const reload = async (message: TemplateResult | null) => {
    p = await api(base);
    view.open = null;
    view.message = message;
    draw();
    showThumbnails();
  };
  /** What an action does, in the current language. */
  const hint = (action: string) => (ACTION_HINTS[action] ? ui(ACTION_HINTS[action]) : '');
  /** Runs a change; a refusal is shown under the actions, as the server words it. */
  const attempt = async (work: () => Promise<unknown>, done: TemplateResult | null) => {
    try {
      await work();
      await reload(done);
    } catch (err) {
      // no signal: the write waits in the outbox (said so, not as a refusal), the form closes
      if (err instanceof QueuedError) view.open = null;
      view.message = err instanceof QueuedError ? okMessage(err.message) : errorMessage(err);
      draw();
    }
  };

  const actionArea = () => {
    if (!view.open) return nothing;
    const { action, key } = view.open;
    const spec = ctx.meta.actions[action];
    return html`<p><small>${hint(action)}</small></p>
      ${actionForm({
        action,
        schema: spec.schema,
        key,
        // the towns but the patch's own
        choices: view.towns ? { town_code: view.towns.filter((c) => c.value !== p.town_code) } : {},
        onSubmit: (body) =>
          attempt(
            () => post(path`/api/patches/${code}/actions/${action}`, body),
            okMessage(`${t('action', action)} ✓`),
          ),
        onCancel: () => {
          view.open = null;
          draw();
        },
      })}`;
  };

  const onNote = (e: SubmitEvent) => {
    e.preventDefault();
    const note = field(e.currentTarget as HTMLFormElement, 'text');
    void attempt(() => post(path`/api/patches/${code}/notes`, { text: note }), null);
  };
  // sent as bytes whatever the browser thinks the type is: the server decides by the content
  const upload = (file: File) => {
    // the limit said before a 20 MB photo crosses a weak signal for nothing
    const max = ctx.meta.evidence_max_bytes;
    if (max && file.size > max) {
      view.message = errorMessage(new Error(ui('patch_photo_too_large', { size: bytes(file.size), max: bytes(max) })));
      return draw();
    }
    return attempt(
      () =>
        // a key of its own: sent again from the outbox (its answer lost), the server keeps one file
        api(
          `${path`/api/patches/${code}/evidence`}?filename=${encodeURIComponent(file.name)}&request_key=${requestKey()}`,
          {
            method: 'POST',
            body: file,
            headers: { 'content-type': 'application/octet-stream' },
          },
        ),
      null,
    );
  };
  const onUpload = (e: SubmitEvent) => {
    e.preventDefault();
    const file = new FormData(e.currentTarget as HTMLFormElement).get('file') as File | null;
    if (!file || !file.size) {
      view.message = errorMessage(new Error(ui('patch_choose_file')));
      return draw();
    }
    void upload(file);
  };
  /** The phone's camera: the photo goes up as soon as it is taken. */
  const onCamera = (e: Event) => {
    const input = e.currentTarget as HTMLInputElement;
    const file = input.files?.[0];
    input.value = '';
    if (file?.size) void upload(file);
  };

  /** A photo full screen over the page: tap the button or press Escape to go back to the case. */
  const viewPhoto = (id: number | string, name: string, stamped = false) => {
    const shut = () => {
      overlay.remove();
      document.removeEventListener('keydown', onKey);
    };
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') shut();
    };
    const overlay = document.createElement('div');
    overlay.id = 'viewer';
    overlay.setAttribute('role', 'dialog');
    overlay.setAttribute('aria-label', name);
    render(
      html`<button type="button" class="close" @click=${shut}>${ui('patch_photo_close')}</button> <img alt=${name} />`,
      overlay,
    );
    document.body.append(overlay);
    document.addEventListener('keydown', onKey);
    nav.onLeave(shut);
    void showImage(overlay.querySelector('img')!, `/api/evidence/${id}${stamped ? '/stamped.jpg' : ''}`).catch(
      reportError,
    );
  };

  /** Photos' thumbnails, each fetched once with the token (new ones after an upload). */
  const showThumbnails = () => {
    for (const img of ctx.main.querySelectorAll<HTMLImageElement>('img[data-thumb]:not([src])'))
      showImage(img, `/api/evidence/${img.dataset.thumb}/thumb.jpg`).catch(() => {});
  };
  // back to the list the clerk came from (the to-do, the map with its filters, the board); else the to-do or the map
  const from = cameFrom();
  const back =
    from && !from.startsWith('#/patch/')
      ? { hash: from, label: ui('patch_back_to', { page: ui(pageName(from)) }) }
      : ctx.me.role === 'town'
        ? { hash: '#/todo', label: ui('patch_back_to', { page: ui('frame_nav_todo') }) }
        : { hash: '#/map', label: ui('patch_back_to', { page: ui('frame_nav_map') }) };
  const draw = () => {
    const actions = p.allowed_actions;
    const centre: [number, number] = [p.lon, p.lat];
    const needed = photosNeeded(p, ctx.meta.evidence_min_photos);
    render(
      html`<p><a id="back" href=${back.hash}>${back.label}</a></p>
        <h2 id="patch-code">${p.code} ${statusBadge(p)}</h2>
        ${
          p.deadline
            ? html`<p
                id="deadline"
                class=${`deadline ${p.deadline.days_left < 0 ? 'late' : p.deadline.days_left <= 1 ? 'soon' : ''}`}
              >
                ${t('deadline', p.deadline.kind)} ${dueText(p.deadline.due, p.deadline.provisional)} ·
                <strong>${daysLeft(p.deadline.days_left)}</strong>
              </p>`
            : nothing
        }
        <div class="patch">
          <div>
            <div class="chips">
              <figure>
                <img id="chip-before" alt=${ui('patch_image_before')} />
                <figcaption>
                  ${p.baseline_month ? ui('before_month', { month: p.baseline_month }) : ui('no_before_month')}
                </figcaption>
              </figure>
              <figure>
                <img id="chip-after" alt=${ui('patch_image_after')} />
                <figcaption>${ui('after_month', { month: p.month })}</figcaption>
              </figure>
              ${
                p.imagery_check
                  ? html`<figure class=${`check check-${p.imagery_check.result}`}>
                      <img id="chip-check" alt=${ui('patch_image_check')} />
                      <figcaption>${checkText(p.imagery_check)}</figcaption>
                    </figure>`
                  : nothing
              }
            </div>
            <div class="card attrs">
              <h3>${ui('patch_attributes')}</h3>
              <table>
                ${attributes(p).map(
                  ([k, v]) =>
                    html`<tr>
                      <th>${k}</th>
                      <td>${v}</td>
                    </tr>`,
                )}
              </table>
            </div>
            <div class="card obs">
              <h3>${ui('patch_observations')}</h3>
              <table>
                <tr>
                  <th>${ui('col_month')}</th>
                  <th>${ui('patch_obs_kind')}</th>
                  <th>${ui('col_area_m2')}</th>
                  <th>${ui('patch_obs_prob')}</th>
                </tr>
                ${p.observations.map(
                  (o) =>
                    html`<tr>
                      <td>${o.month}</td>
                      <td>${OBSERVATION_KINDS[o.kind] ? ui(OBSERVATION_KINDS[o.kind]) : o.kind}</td>
                      <td>${fmt(o.area_m2)}</td>
                      <td>${fmt(o.mean_prob, 2)}</td>
                    </tr>`,
                )}
              </table>
            </div>
          </div>
          <div>
            ${locationCard(p.code, centre, view.here, locate)}
            <div class="card actions">
              <h3>${ui('patch_actions')}</h3>
              ${
                actions.length
                  ? actions.map(
                      (a) =>
                        html`<button
                          data-open=${a}
                          title=${hint(a)}
                          @click=${async () => {
                            // 更正镇街 picks a town from the town layer, not a typed code
                            if (a === 'correct_town' && !view.towns)
                              view.towns = (await api('/api/map/towns?z=0')).features.map((f) => ({
                                value: f.properties.code,
                                label: `${f.properties.name}（${f.properties.code}）`,
                              }));
                            view.open = { action: a, key: requestKey() };
                            draw();
                          }}
                        >
                          ${t('action', a)}
                        </button>`,
                    )
                  : html`<p>${ui('patch_no_actions')}</p>`
              }
              <div id="action-area">${actionArea()}</div>
              <div id="action-msg">${view.message ?? nothing}</div>
            </div>
            <div class="card history">
              <h3>${ui('patch_history')}</h3>
              <table id="history">
                <tr>
                  <th>${ui('patch_history_at')}</th>
                  <th>${ui('patch_history_actor')}</th>
                  <th>${ui('patch_history_event')}</th>
                  <th>${ui('patch_history_detail')}</th>
                </tr>
                ${p.history.map(
                  (h) =>
                    html`<tr>
                      <td>${localTime(h.at)}</td>
                      <td>${h.actor === 'system' ? ui('history_system') : h.actor}</td>
                      <td>${h.type in ctx.meta.actions ? t('action', h.type) : t('event', h.type)}</td>
                      <td>
                        ${historySentence(h.type, h.detail)}${
                          // the raw record, for analysts who need its numbers
                          ctx.me.role === 'analyst' && h.detail
                            ? html`<details>
                                <summary>${ui('history_details')}</summary>
                                <small>${summarise(h.detail)}</small>
                              </details>`
                            : nothing
                        }
                      </td>
                    </tr>`,
                )}
              </table>
              <form id="note" class="inline" @submit=${onNote}>
                <input name="text" placeholder=${ui('patch_note_placeholder')} /><button>
                  ${ui('patch_add_note')}
                </button>
              </form>
            </div>
            <div class="card evidence">
              <h3>${ui('patch_evidence')}</h3>
              ${needed.line ? html`<p class="needed" id="photos-needed">${needed.line}</p>` : nothing}
              ${evidenceByStage(p.evidence, {
                view: viewPhoto,
                download: (id) => void download(`/api/evidence/${id}`).catch(reportError),
              })}
              <p class="hint">${ui('patch_photo_next_stage', { stage: t('stage', needed.stage) })}</p>
              <form id="upload" class="inline" @submit=${onUpload}>
                <input type="file" name="file" accept="image/jpeg,image/png,application/pdf" /><button>
                  ${ui('patch_upload')}
                </button>
              </form>
              <label class="camera button"
                ><input type="file" accept="image/*" capture="environment" @change=${onCamera} />${ui(
                  'patch_take_photo',
                )}</label
              >
            </div>
          </div>
        </div>`,
      ctx.main,
    );
  };
  draw();
  showThumbnails();
  for (const which of p.imagery_check ? (['before', 'after', 'check'] as const) : (['before', 'after'] as const)) {
    const img = ctx.main.querySelector<HTMLImageElement>(`#chip-${which}`)!;
    showImage(img, path`/api/patches/${code}/chips/${which}.png`)
      .then((shown) => {
        if (!shown) img.alt = ui('patch_no_imagery');
      })
      .catch(() => {});
  }
}

/** The page a hash shows, by the navigation's words. */
function pageName(hash: string): UiKey {
  if (hash.startsWith('#/todo')) return 'frame_nav_todo';
  if (hash.startsWith('#/board')) return 'frame_nav_board';
  if (hash.startsWith('#/batches')) return 'frame_nav_batches';
  return 'frame_nav_map';
}
