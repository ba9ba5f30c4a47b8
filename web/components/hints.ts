/**
 * What each patch action does, and what a field of its form asks for, as catalogue texts: the API's
 * own labels and schema descriptions are written for API clients in English. Pure data (a test checks
 * every action and every described field has one).
 */
import type { UiKey } from '../../i18n/say.ts';

/** The title of an action's button and the line above its form. */
export const ACTION_HINTS: Record<string, UiKey> = {
  dispatch: 'patch_hint_dispatch',
  dismiss: 'patch_hint_dismiss',
  verify: 'patch_hint_verify',
  rectify: 'patch_hint_rectify',
  report_rectified: 'patch_hint_report_rectified',
  close: 'patch_hint_close',
  send_back: 'patch_hint_send_back',
  correct_town: 'patch_hint_correct_town',
  merge: 'patch_hint_merge',
  split: 'patch_hint_split',
  extend: 'patch_hint_extend',
  escalate: 'patch_hint_escalate',
};

/** The hint beside a form field whose schema describes it: by `action.field` where one action's field means more, else by field. */
export const FIELD_HINTS: Record<string, UiKey> = {
  'close.reason': 'patch_field_hint_close_reason',
  violation: 'patch_field_hint_violation',
  permit_ref: 'patch_field_hint_permit_ref',
  due: 'patch_field_hint_due',
  other: 'patch_field_hint_other',
};
