import { html, nothing, render } from 'lit-html';
import type { UserBody } from '../../api/responses.ts';
import type { Locale } from '../../i18n/index.ts';
import { locale, setLocale, t, ui } from '../locale.ts';
import { currentLocation } from '../router.ts';

/** The header: the pages this role has, and who is signed in. */
export function renderFrame(me: UserBody | null, signOut: () => void, redraw: () => void = () => {}): void {
  const nav = document.querySelector<HTMLElement>('#nav')!;
  const who = document.querySelector<HTMLElement>('#who')!;
  if (!me) {
    render(nothing, nav);
    render(nothing, who);
    return;
  }
  const links: [string, string][] = [
    ['#/todo', ui('frame_nav_todo')],
    ['#/map', ui('frame_nav_map')],
    ['#/board', ui('frame_nav_board')],
  ];
  if (me.role !== 'town') links.push(['#/batches', ui('frame_nav_batches')]);
  if (me.role === 'admin' || me.role === 'supervisor') links.push(['#/models', ui('frame_nav_models')]);
  if (me.role === 'admin') links.push(['#/admin', ui('frame_nav_admin')]);
  const here = currentLocation().path.split('/')[1] || 'map';
  render(
    links.map(
      ([href, label]) => html`<a href=${href} class=${href.split('/')[1] === here ? 'active' : ''}>${label}</a>`,
    ),
    nav,
  );
  const other: Locale = locale() === 'zh-CN' ? 'en' : 'zh-CN';
  render(
    html`${me.displayName || me.username} ·
      ${t('role', me.role)}${
        me.townCode ? html` · <span id="who-town" title=${me.townCode}>${me.townName ?? me.townCode}</span>` : ''
      }
      <button
        id="locale"
        lang=${other}
        @click=${() => {
          setLocale(other);
          redraw();
        }}
      >
        ${ui('frame_other_locale')}
      </button>
      <button id="signout" @click=${signOut}>${ui('frame_sign_out')}</button>`,
    who,
  );
}
