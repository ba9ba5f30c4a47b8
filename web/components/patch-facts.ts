/** What the patch page says about a patch: its attributes, a history event's detail, a photo's time and place. */
import { html, type TemplateResult } from 'lit-html';
import type { PatchDetailBody } from '../../api/responses.ts';
import { fmt, localTime, M2_PER_MU, text } from '../labels.ts';
import { t } from '../locale.ts';
import { href } from '../router.ts';
import { distanceM, distanceText } from './location.ts';

const patchLink = (code: string) => html`<a href=${href(`/patch/${encodeURIComponent(code)}`)}>${code}</a>`;

export function attributes(p: PatchDetailBody): [string, TemplateResult | string][] {
  const rows: [string, TemplateResult | string][] = [
    ['月份 Month', p.month],
    ['镇街 Town', `${p.town_name ?? ''} ${p.town_code ?? ''}`],
    ['网格 Grid', p.grid_code ?? ''],
    ['类别 Class', t('class', p.class)],
    ['面积 Area', `${fmt(p.area_m2)} m² (${(p.area_m2 / M2_PER_MU).toFixed(2)} 亩)`],
    ['耕地 Farmland', `${fmt(p.farmland_m2)} m²`],
    ['生态 Ecological', `${fmt(p.ecological_m2)} m²`],
    ['水域 Water', `${fmt(p.water_m2)} m²`],
    ['模型 Model', `${p.model} · p=${fmt(p.mean_prob, 2)}`],
    ['核查结果 Verification', t('result', p.verification_result) || '–'],
    ['违法类型 Violation', t('violation', p.violation) || '–'],
    ['许可 Permit', p.permit_ref ?? '–'],
    ['整改措施 Measure', t('measure', p.measure) || '–'],
    ['核查期限 Verify by', p.verify_due ?? '–'],
    ['整改期限 Rectify by', p.rectify_due ?? '–'],
    ['逾期 Overdue since', p.overdue_since ?? '–'],
  ];
  if (p.regularised) rows.push(['规则化 Outline', `${p.regularised} (${fmt(p.raw_area_m2)} m² before)`]);
  if (p.rebuilt_of) rows.push(['复建 Rebuilt of', patchLink(p.rebuilt_of)]);
  if (p.split_from) rows.push(['拆分自 Split from', patchLink(p.split_from)]);
  if (p.merged_into) rows.push(['并入 Merged into', patchLink(p.merged_into)]);
  return rows;
}

/** A history event's detail in one line (the geometry it replaced left out). */
/** When and how far from the patch a photo was taken, by its EXIF: the proof of a site visit. */
export function photoWhereWhen(
  e: { taken_at: string | null; lon: number | null; lat: number | null },
  centre: [number, number] | null,
): TemplateResult | string {
  const when = e.taken_at ? `拍摄于 taken ${localTime(e.taken_at)}` : '';
  const where =
    e.lon !== null && e.lat !== null && centre
      ? ` · 距图斑 ${distanceText(distanceM([e.lon, e.lat], centre))} from the patch`
      : '';
  return when || where ? html`<small class="exif">${when}${where}</small>` : '';
}

export function summarise(detail: unknown): string {
  if (!detail || typeof detail !== 'object') return '';
  return Object.entries(detail as Record<string, unknown>)
    .filter(([k]) => k !== 'previous_geom')
    .map(([k, v]) => `${k}: ${text(v)}`)
    .join('; ')
    .slice(0, 200);
}
