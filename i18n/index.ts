/**
 * One message catalogue for the server, the web app and the exports: the words for every code the
 * API gives, in zh-CN (the default) and en. Pure data: every layer and the browser bundle import it.
 */
import { en } from './en.ts';
import { zhCN } from './zh-CN.ts';

type Widen<T> = { [G in keyof T]: { [K in keyof T[G]]: string } };
/** The catalogue's shape: groups of codes, each with its words. */
export type Catalogue = Widen<typeof zhCN>;
export type Group = keyof Catalogue;
export const LOCALES = { 'zh-CN': zhCN as Catalogue, en } as const;
export type Locale = keyof typeof LOCALES;
export const DEFAULT_LOCALE: Locale = 'zh-CN';

/** The words for `code` in `group`; the code itself when the catalogue has none (a test keeps that from happening). */
export function label(group: Group, code: string | null | undefined, locale: Locale = DEFAULT_LOCALE): string {
  if (code === null || code === undefined) return '';
  return (LOCALES[locale][group] as Record<string, string>)[code] ?? code;
}

/** A size as people read it: 512 B, 64 KB, 20 MB, 23.4 MB (binary units, as file managers show them). */
export function byteSize(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${Math.round(n / 1024)} KB`;
  const mb = n / (1024 * 1024);
  return `${Number.isInteger(Math.round(mb * 10) / 10) ? Math.round(mb) : (Math.round(mb * 10) / 10).toFixed(1)} MB`;
}
