/**
 * The month's patch list as the files a town office works with — XLSX, PDF verification sheets, GPKG,
 * SHP (zipped) — for one town or all the user may see, all patches or only the unfinished ones.
 */
import { html, nothing, type TemplateResult } from 'lit-html';
import type { UiKey } from '../../i18n/say.ts';
import { download } from '../api.ts';
import { ui } from '../locale.ts';
import { errorMessage } from './message.ts';

const FILES: [format: string, label: UiKey][] = [
  ['xlsx', 'downloads_xlsx'],
  ['pdf', 'downloads_pdf'],
  ['gpkg', 'downloads_gpkg'],
  ['shp', 'downloads_shp'],
];

export interface DownloadsState {
  /** 'open' (the unfinished patches) or '' (all). */
  status: string;
  busy: string | null;
  failure: unknown;
}

export function downloadsCard(
  month: string,
  town: { code: string; name: string } | null,
  state: DownloadsState,
  redraw: () => void,
): TemplateResult {
  const get = async (format: string) => {
    const q = new URLSearchParams({ month, format });
    if (town) q.set('town', town.code);
    if (state.status) q.set('status', state.status);
    state.busy = format;
    state.failure = null;
    redraw();
    try {
      // named by the server: town code, town name and month (Content-Disposition)
      await download(`/api/export?${q}`);
    } catch (err) {
      state.failure = err;
    }
    state.busy = null;
    redraw();
  };
  return html`<div class="card" id="downloads">
    <h3>${ui('downloads_title')} <small>${month}${town ? ` · ${town.name}` : ''}</small></h3>
    <label
      >${ui('downloads_patches')}
      <select
        name="export-status"
        @change=${(e: Event) => {
          state.status = (e.target as HTMLSelectElement).value;
          redraw();
        }}
      >
        <option value="" ?selected=${state.status === ''}>${ui('all')}</option>
        <option value="open" ?selected=${state.status === 'open'}>${ui('downloads_open_only')}</option>
      </select></label
    >
    <div class="download-buttons">
      ${FILES.map(
        ([format, label]) =>
          html`<button
            type="button"
            data-download=${format}
            ?disabled=${state.busy !== null}
            @click=${() => void get(format)}
          >
            ${state.busy === format ? '…' : ''}${ui(label)}
          </button>`,
      )}
    </div>
    ${state.failure ? errorMessage(state.failure) : nothing}
  </div>`;
}
