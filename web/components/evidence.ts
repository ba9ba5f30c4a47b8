/**
 * A case's photos and documents by the stage they document — 核查 (the building as found) beside
 * 整改 (the result of the order), as a supervisor compares them before closing — each with who took
 * it, when and where, and the flags that say why it may not prove what it is attached to.
 */
import { html, nothing, type TemplateResult } from 'lit-html';
import type { PatchDetailBody } from '../../api/responses.ts';
import { bytes, localTime } from '../labels.ts';
import { t, ui } from '../locale.ts';
import { distanceText } from './location.ts';

type Evidence = PatchDetailBody['evidence'][number];
type Stage = 'verify' | 'rectify';

export interface EvidenceHandlers {
  /** Open a photo full screen (its stamped copy when asked). */
  view: (id: number | string, name: string, stamped?: boolean) => void;
  /** Download a document. */
  download: (id: number | string) => void;
}

/** What the next photos count for, and how many the next step needs, in words; null when nothing is asked. */
export function photosNeeded(
  p: Pick<PatchDetailBody, 'status' | 'evidence' | 'history'>,
  min: { verify: number; rectify: number } | undefined,
): { stage: Stage; line: string | null } {
  const stage: Stage = p.status === 'rectifying' || p.status === 'rectified' ? 'rectify' : 'verify';
  if (!min) return { stage, line: null };
  const photos = (s: Stage, since?: string) =>
    p.evidence.filter(
      (e) => e.stage === s && e.content_type.startsWith('image/') && (!since || String(e.uploaded_at) >= since),
    ).length;
  if (p.status === 'dispatched' && min.verify > 0)
    return {
      stage,
      line: ui('patch_photos_needed', {
        action: t('result', 'illegal'),
        min: min.verify,
        stage: t('stage', 'verify'),
        have: photos('verify'),
      }),
    };
  if (p.status === 'rectifying' && min.rectify > 0) {
    // photos count from the order now running (the last rectify or send back)
    const since = p.history
      .filter((h) => h.type === 'rectify' || h.type === 'send_back')
      .map((h) => String(h.at))
      .at(-1);
    return {
      stage,
      line: ui('patch_photos_needed', {
        action: t('action', 'report_rectified'),
        min: min.rectify,
        stage: t('stage', 'rectify'),
        have: photos('rectify', since),
      }),
    };
  }
  return { stage, line: null };
}

function item(e: Evidence, on: EvidenceHandlers): TemplateResult {
  const photo = e.content_type.startsWith('image/');
  const when = e.taken_at ? ui('patch_photo_taken', { time: localTime(e.taken_at) }) : '';
  const where =
    e.distance_m !== null && e.distance_m !== undefined
      ? ui('patch_photo_distance', { distance: distanceText(e.distance_m) })
      : '';
  return html`<li data-stage=${e.stage}>
    ${
      photo
        ? html`<img class="thumb" alt=${e.filename} data-thumb=${e.id} @click=${() => on.view(e.id, e.filename)} />`
        : nothing
    }
    <div>
      <a
        href="#"
        data-evidence=${e.id}
        @click=${(ev: Event) => {
          ev.preventDefault();
          // a photo opens full screen on the page; a PDF is downloaded
          if (photo) on.view(e.id, e.filename);
          else on.download(e.id);
        }}
        >${e.filename}</a
      >
      (${bytes(e.bytes)})
      ${
        e.stamped
          ? html`<a
              href="#"
              class="stamped"
              @click=${(ev: Event) => {
                ev.preventDefault();
                on.view(e.id, e.filename, true);
              }}
              >${ui('patch_photo_stamped')}</a
            >`
          : nothing
      }
      ${e.note ?? ''}
      ${when || where ? html`<small class="exif">${[when, where].filter(Boolean).join(' · ')}</small>` : nothing}
      <small class="author">${ui('patch_photo_by', { author: e.author })} · ${localTime(e.uploaded_at)}</small>
      ${
        e.flags.length
          ? html`<span class="flags"
              >${e.flags.map((f) => html`<span class="flag">${t('photo_flag', f)}</span>`)}</span
            >`
          : nothing
      }
    </div>
  </li>`;
}

/** The two stages side by side (stacked on a phone); a stage without files says so. */
export function evidenceByStage(evidence: Evidence[], on: EvidenceHandlers): TemplateResult {
  const stages: Stage[] = ['verify', 'rectify'];
  return html`<div id="evidence" class="stages">
    ${stages.map((s) => {
      const mine = evidence.filter((e) => e.stage === s);
      return html`<section class="stage" data-stage=${s}>
        <h4>${ui('patch_photos_of', { stage: t('stage', s) })}</h4>
        <ul>
          ${mine.length ? mine.map((e) => item(e, on)) : html`<li class="none">–</li>`}
        </ul>
      </section>`;
    })}
  </div>`;
}
