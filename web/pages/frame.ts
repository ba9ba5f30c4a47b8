import { html, nothing, render } from 'lit-html';
import type { UserBody } from '../../api/responses.ts';
import { currentLocation } from '../router.ts';

/** The header: the pages this role has, and who is signed in. */
export function renderFrame(me: UserBody | null, signOut: () => void): void {
  const nav = document.querySelector<HTMLElement>('#nav')!;
  const who = document.querySelector<HTMLElement>('#who')!;
  if (!me) {
    render(nothing, nav);
    render(nothing, who);
    return;
  }
  const links: [string, string][] = [
    ['#/todo', '待办 To-do'],
    ['#/map', '地图 Map'],
    ['#/board', '督办 Board'],
  ];
  if (me.role !== 'town') links.push(['#/batches', '批次 Batches']);
  const here = currentLocation().path.split('/')[1] || 'map';
  render(
    links.map(
      ([href, label]) => html`<a href=${href} class=${href.split('/')[1] === here ? 'active' : ''}>${label}</a>`,
    ),
    nav,
  );
  render(
    html`${me.displayName || me.username} · ${me.role}${me.townCode ? ` · ${me.townCode}` : ''}
      <button id="signout" @click=${signOut}>退出 Sign out</button>`,
    who,
  );
}
