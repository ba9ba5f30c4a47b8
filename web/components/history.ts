/**
 * A patch's history in words: each event one sentence in the reader's language, from the catalogue
 * (who acted is in its own column; when, too): what was done, with its result, deadline and reason.
 * The raw detail stays behind a 详情 disclosure for analysts.
 */
import type { TextKey } from '../../i18n/say.ts';
import { bytes, localTime } from '../labels.ts';
import { t, ui } from '../locale.ts';

type Detail = Record<string, unknown>;
const s = (v: unknown): string => (v === null || v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v));

/** ", 理由：…" when there is one. */
const because = (d: Detail): string => (s(d.reason).trim() ? ui('history_reason', { reason: s(d.reason).trim() }) : '');
const noted = (d: Detail): string => (s(d.note).trim() ? ui('history_note', { note: s(d.note).trim() }) : '');

const SENTENCES: Record<string, (d: Detail) => string> = {
  detected: (d) => ui('history_detected', { month: s(d.month) }),
  reported: (d) =>
    ui('history_reported', {
      source: t('source', s(d.source)),
      month: s(d.month),
      seen: d.visible ? ui('history_reported_seen', { month: s(d.month) }) : ui('history_reported_unseen'),
    }) +
    (d.verify_due ? ui('history_reported_due', { due: s(d.verify_due) }) : '') +
    noted(d),
  redetected: (d) => ui('history_redetected', { month: s(d.month) }),
  rebuilt: (d) => ui('history_rebuilt', { month: s(d.month), code: s(d.rebuilt_of) }),
  dispatch: (d) => ui('history_dispatch', { due: s(d.verify_due) }) + noted(d),
  dismiss: (d) => ui('history_dismiss', { reason: t('dismiss_reason', s(d.reason)) }) + noted(d),
  verify: (d) =>
    ui('history_verify', { result: t('result', s(d.result)) }) +
    (d.violation ? ui('history_violation', { violation: t('violation', s(d.violation)) }) : '') +
    (d.permit_ref ? ui('history_permit', { permit: s(d.permit_ref) }) : '') +
    noted(d),
  rectify: (d) => ui('history_rectify', { measure: t('measure', s(d.measure)), due: s(d.rectify_due) }) + noted(d),
  report_rectified: (d) => ui('history_report_rectified') + noted(d),
  close: (d) => {
    const check = d.imagery_check as { month?: string; result?: string } | undefined;
    return (
      ui('history_close') +
      (check ? ui('history_close_check', { month: s(check.month), result: t('lookback', s(check.result)) }) : '') +
      because(d) +
      noted(d)
    );
  },
  send_back: (d) => ui('history_send_back') + because(d),
  correct_town: (d) => ui('history_correct_town', { from: s(d.from_town), to: s(d.town_code) }) + because(d),
  merge: (d) => ui('history_merge', { other: s(d.other) }) + because(d),
  merged: (d) => ui('history_merged', { into: s(d.into) }) + because(d),
  split: (d) =>
    ui('history_split', {
      parts: ((d.parts as { code: string }[] | undefined) ?? []).map((p) => p.code).join('、'),
    }) + because(d),
  split_from: (d) => ui('history_split_from', { parent: s(d.parent) }) + because(d),
  extend: (d) =>
    ui('history_extend', {
      deadline: t('deadline', d.field === 'rectify_due' ? 'rectification' : 'verification'),
      from: s(d.from_due),
      to: s(d.to_due),
      days: s(d.working_days),
    }) + because(d),
  escalate: (d) => ui('history_escalate') + because(d),
  escalated: (d) => ui('history_escalated', { days: s(d.working_days_late), due: s(d.due) }),
  overdue: (d) => ui('history_overdue', { days: s(d.working_days_late), due: s(d.due) }),
  evidence_added: (d) =>
    ui('history_evidence', { file: s(d.filename), size: typeof d.bytes === 'number' ? bytes(d.bytes) : '' }) +
    (d.taken_at ? ui('history_evidence_taken', { time: localTime(s(d.taken_at)) }) : ''),
  note: (d) => s(d.text),
  imagery_check: (d) => ui('history_imagery_check', { month: s(d.month), result: t('lookback', s(d.result)) }),
  deadline_recounted: (d) =>
    ui('history_recounted', {
      deadline: t('deadline', d.field === 'rectify_due' ? 'rectification' : 'verification'),
      from: s(d.from_due),
      to: s(d.to_due),
    }),
};

/** The sentence for one history event; an event this page does not know is named by its label alone. */
export function historySentence(type: string, detail: unknown): string {
  const d = (detail && typeof detail === 'object' ? detail : {}) as Detail;
  const say = SENTENCES[type];
  return say ? say(d) : '';
}

/** Every event type with a sentence (a test checks each has its words in both languages). */
export const HISTORY_TYPES = Object.keys(SENTENCES);
export type { TextKey };
