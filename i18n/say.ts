/**
 * Messages: what the server says when it refuses or fails, as a key and its values, put into words
 * in the reader's language only when it is said (the same refusal reads 图斑 … 已销号 to a town
 * clerk and "patch … is closed" in the English log). The web app's own texts (ui.*.ts) are keys of
 * the same catalogue, said and put into words the same way. Pure data and string work, like the catalogue.
 */
import { label, type Group, type Locale, DEFAULT_LOCALE, LOCALES } from './index.ts';
import { messagesEn } from './messages.en.ts';
import { messagesZhCN } from './messages.zh-CN.ts';
import { uiEn } from './ui.en.ts';
import { uiZhCN, type UiKey } from './ui.zh-CN.ts';

/** A message the server says (messages.*.ts; messages.en.ts is typed by it, so it stays these keys only). */
export type MessageKey = keyof typeof messagesZhCN;
export type { UiKey };
/** Any text of the catalogue: a server message or one of the web app's own texts (ui.*.ts). */
export type TextKey = MessageKey | UiKey;
/** A placeholder's value: a message within the message is put into the same language. */
type MessageValue = string | number | readonly (string | Said)[] | Said | null | undefined;
export interface MessageParams {
  readonly [name: string]: MessageValue;
}

/** A message not yet in words: its key and the values of its placeholders. */
export interface Said {
  readonly key: TextKey;
  readonly params: MessageParams;
}

/** Whether a value (a placeholder's, a zod issue's params.say) is a message not yet in words. */
export const isSaid = (v: unknown): v is Said => typeof v === 'object' && v !== null && 'key' in v && 'params' in v;

/** Every text by locale: the server's messages and the web app's texts (a test keeps their keys apart). */
export const MESSAGES: Record<Locale, Record<TextKey, string>> = {
  'zh-CN': { ...messagesZhCN, ...uiZhCN },
  en: { ...messagesEn, ...uiEn },
};

/** How a list reads in each language, and the word for none. */
const LISTS: Record<Locale, { separator: string; none: string }> = {
  'zh-CN': { separator: '、', none: '无' },
  en: { separator: ', ', none: 'none' },
};

export const say = (key: TextKey, params: MessageParams = {}): Said => ({ key, params });

/** `{name}` or `{name:group}` in a template. */
export const PLACEHOLDER = /\{([a-z_0-9]+)(?::([a-z_]+))?\}/g;

/** The message in `locale`'s words; a value of `{name:group}` (or each of a list) through the catalogue. */
export function render(s: Said, locale: Locale = DEFAULT_LOCALE): string {
  const list = LISTS[locale];
  return MESSAGES[locale][s.key].replace(PLACEHOLDER, (_m, name: string, group?: string) => {
    const v = s.params[name];
    const word = (x: string | number | Said): string =>
      isSaid(x) ? render(x, locale) : group ? label(group as Group, String(x), locale) : String(x);
    if (Array.isArray(v)) return v.length ? v.map(word).join(list.separator) : list.none;
    if (v === null || v === undefined) return list.none;
    return word(v as string | number | Said);
  });
}

/**
 * Adds a catalogue message to a zod refinement as a custom issue: its English words as the issue's
 * message (logs, the CLI), the message itself in `params.say` for the server to say in the reader's
 * language (server/refusals.ts). `ctx` is zod's refinement context; no zod import is needed here.
 */
export function addSaidIssue(
  ctx: { addIssue(issue: { code: 'custom'; message: string; params: { say: Said } }): void },
  said: Said,
): void {
  ctx.addIssue({ code: 'custom', message: render(said, 'en'), params: { say: said } });
}

/** The English words of a message without values, for texts that must be plain strings (zod schemas). */
export const en = (key: MessageKey): string => MESSAGES.en[key];

/** The key whose English words are `text`, when a plain string came from `en(key)`. */
const BY_ENGLISH = new Map(Object.entries(messagesEn).map(([k, v]) => [v, k as MessageKey]));
export const keyOfEnglish = (text: string): MessageKey | undefined => BY_ENGLISH.get(text);

/** The locale a request asks for in its Accept-Language header; zh-CN when it names none we have. */
export function localeOf(acceptLanguage: string | undefined): Locale {
  for (const part of (acceptLanguage ?? '').split(',')) {
    const tag = part.split(';')[0].trim().toLowerCase();
    if (tag.startsWith('zh')) return 'zh-CN';
    const hit = (Object.keys(LOCALES) as Locale[]).find((l) => l.toLowerCase() === tag || tag.startsWith(`${l}-`));
    if (hit) return hit;
  }
  return DEFAULT_LOCALE;
}
