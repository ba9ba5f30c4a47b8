/** What the patch page says about a patch: its attributes and a history event's detail. */
import { html, type TemplateResult } from 'lit-html';
import type { PatchDetailBody } from '../../api/responses.ts';
import type { UiKey } from '../../i18n/say.ts';
import { fmt, M2_PER_MU, text } from '../labels.ts';
import { t, ui } from '../locale.ts';
import { href } from '../router.ts';
import { dueText } from './deadline.ts';

const patchLink = (code: string) => html`<a href=${href(`/patch/${encodeURIComponent(code)}`)}>${code}</a>`;

/** The patch's attributes as rows of the attribute table: the heading's words and the value. */
export function attributes(p: PatchDetailBody): [string, TemplateResult | string][] {
  const rows: [UiKey, TemplateResult | string][] = [
    ['col_month', p.month],
    ['col_town', `${p.town_name ?? ''} ${p.town_code ?? ''}`],
    ['patch_attr_grid', p.grid_code ?? ''],
    ['col_class', t('class', p.class)],
    ['col_relation', relationText(p)],
    ['patch_attr_area', ui('patch_area_value', { m2: fmt(p.area_m2), mu: (p.area_m2 / M2_PER_MU).toFixed(2) })],
    ['patch_attr_farmland', `${fmt(p.farmland_m2)} m²`],
    ['patch_attr_ecological', `${fmt(p.ecological_m2)} m²`],
    ['patch_attr_water', `${fmt(p.water_m2)} m²`],
    p.model
      ? ['patch_attr_model', `${p.model} · p=${fmt(p.mean_prob, 2)}`]
      : [
          'patch_attr_source',
          ui('patch_source_value', {
            source: t('source', p.source),
            visible: p.visible ? ui('patch_source_visible', { month: p.month }) : ui('patch_source_unseen'),
          }),
        ],
    ['patch_attr_result', t('result', p.verification_result) || '–'],
    ['patch_attr_violation', t('violation', p.violation) || '–'],
    ['patch_attr_permit', p.permit_ref ?? '–'],
    ['patch_attr_measure', t('measure', p.measure) || '–'],
    ['patch_attr_verify_due', dueText(p.verify_due, p.verify_due_provisional)],
    ['patch_attr_rectify_due', dueText(p.rectify_due, p.rectify_due_provisional)],
    ['patch_attr_overdue_since', p.overdue_since ?? '–'],
  ];
  if (p.imagery_check) rows.push(['patch_attr_check', checkText(p.imagery_check)]);
  if (p.regularised)
    rows.push(['patch_attr_outline', ui('patch_outline_value', { outline: p.regularised, area: fmt(p.raw_area_m2) })]);
  if (p.rebuilt_of) rows.push(['patch_attr_rebuilt_of', patchLink(p.rebuilt_of)]);
  if (p.split_from) rows.push(['patch_attr_split_from', patchLink(p.split_from)]);
  if (p.merged_into) rows.push(['patch_attr_merged_into', patchLink(p.merged_into)]);
  return rows.map(([key, value]) => [ui(key), value]);
}

/** The patch's relation to registered buildings, with the overlap and the area outside where it has one. */
export function relationText(
  p: Pick<PatchDetailBody, 'building_relation' | 'registered_building_m2' | 'extension_m2'>,
): string {
  const words = t('relation', p.building_relation);
  if (p.building_relation === 'new') return words;
  return ui('patch_relation_value', {
    relation: words,
    registered: fmt(p.registered_building_m2),
    outside: fmt(p.extension_m2),
  });
}

/** 回头看: the latest judgement in words, `2024-04：已拆除（变化概率 0.91）`, or a dash. */
export function checkText(c: PatchDetailBody['imagery_check']): string {
  if (!c) return '–';
  return ui('patch_check_value', {
    month: c.month,
    result: t('lookback', c.result),
    score: c.score === null ? '–' : fmt(c.score, 2),
  });
}

/** A history event's detail in one line (the geometry it replaced and an imagery check's measurements left out). */
export function summarise(detail: unknown): string {
  if (!detail || typeof detail !== 'object') return '';
  return Object.entries(detail as Record<string, unknown>)
    .filter(([k]) => k !== 'previous_geom' && k !== 'evidence')
    .map(([k, v]) => `${k}: ${text(v)}`)
    .join('; ')
    .slice(0, 200);
}
