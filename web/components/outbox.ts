/**
 * The outbox in the header: what waits for the signal, what the server refused once it arrived
 * (in its own words, until dismissed), and whether the page shows what the phone kept.
 */
import { html, nothing, render } from 'lit-html';
import { offlineState } from '../api.ts';
import { ui } from '../locale.ts';
import { outbox, type OutboxItem } from '../offline.ts';

export async function renderOutbox(username: string | null, sendNow: () => void): Promise<void> {
  const where = document.querySelector<HTMLElement>('#queue');
  if (!where) return;
  const items = username ? (await outbox.all()).filter((i) => i.username === username) : [];
  const waiting = items.filter((i) => !i.failed);
  const failed = items.filter((i) => i.failed);
  where.hidden = !waiting.length && !failed.length && !offlineState.showingKept;
  render(
    html`${offlineState.showingKept ? html`<p class="kept">${ui('outbox_kept')}</p>` : nothing}
    ${
      waiting.length
        ? html`<div class="waiting">
            <strong>${ui('outbox_waiting', { n: waiting.length })}</strong>
            <button type="button" id="send-now" @click=${sendNow}>${ui('outbox_send_now')}</button>
            <ul>
              ${waiting.map((i) => html`<li>${i.label}</li>`)}
            </ul>
          </div>`
        : nothing
    }
    ${failed.map(
      (i: OutboxItem) =>
        html`<div class="refused" role="alert">
          <span>${i.label}：${ui('outbox_failed', { message: i.failed!.message })}</span>
          <button type="button" @click=${() => void outbox.remove(i.id!)}>${ui('outbox_dismiss')}</button>
        </div>`,
    )}`,
    where,
  );
}
