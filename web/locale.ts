/**
 * The web app's language: zh-CN unless the user picked English (kept in localStorage). Codes from
 * the API become words through the shared catalogue (i18n/), the same one the exports use, and so
 * do the app's own texts (i18n/ui.*.ts): no page writes a word of its own.
 */
import { DEFAULT_LOCALE, label, LOCALES, type Group, type Locale } from '../i18n/index.ts';
import { render, say, type MessageParams, type TextKey } from '../i18n/say.ts';

const KEY = 'tuban.locale';
const stored = localStorage.getItem(KEY);
let current: Locale = stored && stored in LOCALES ? (stored as Locale) : DEFAULT_LOCALE;

export const locale = (): Locale => current;

export function setLocale(l: Locale): void {
  current = l;
  localStorage.setItem(KEY, l);
  document.documentElement.lang = l;
}
document.documentElement.lang = current;

/** The words for an API code in the current language. */
export const t = (group: Group, code: string | null | undefined): string => label(group, code, current);

/** One of the app's texts in the current language, its `{placeholders}` filled from `params`. */
export const ui = (key: TextKey, params: MessageParams = {}): string => render(say(key, params), current);

/** Every code of a group with its words, for a choice. */
export const choices = (group: Group): [string, string][] =>
  Object.keys(LOCALES[DEFAULT_LOCALE][group]).map((code) => [code, t(group, code)]);

/** Which catalogue group names the values of an action form's field. */
export const FIELD_VALUES: Record<string, Group> = {
  result: 'result',
  violation: 'violation',
  measure: 'measure',
  reason: 'dismiss_reason',
};
