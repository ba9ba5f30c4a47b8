import { html, render, type TemplateResult } from 'lit-html';
import type { TextKey } from '../../i18n/say.ts';
import { ui } from '../locale.ts';

/** An error as the user reads it: the server's message (it names the field and the reason). */
export const errorMessage = (err: unknown): TemplateResult =>
  html`<div class="error" role="alert">${err instanceof Error ? err.message : String(err)}</div>`;

export const okMessage = (text: string): TemplateResult => html`<div class="ok">${text}</div>`;

/** A text whose placeholders are parts of the page (a command in <code>, a link), in the current language. */
export function uiWith(key: TextKey, parts: Record<string, TemplateResult>): TemplateResult {
  const mark = (name: string) => `\u0000${name}\u0000`;
  const words = ui(key, Object.fromEntries(Object.keys(parts).map((name) => [name, mark(name)])));
  return html`${words.split('\u0000').map((piece, i) => (i % 2 ? parts[piece] : piece))}`;
}

/** Draw an error into `where`. */
export function showError(where: HTMLElement, err: unknown): void {
  render(errorMessage(err), where);
}
