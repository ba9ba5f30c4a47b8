import { html, render, type TemplateResult } from 'lit-html';

/** An error as the user reads it: the server's message (it names the field and the reason). */
export const errorMessage = (err: unknown): TemplateResult =>
  html`<div class="error" role="alert">${err instanceof Error ? err.message : String(err)}</div>`;

export const okMessage = (text: string): TemplateResult => html`<div class="ok">${text}</div>`;

/** Draw an error into `where`. */
export function showError(where: HTMLElement, err: unknown): void {
  render(errorMessage(err), where);
}
