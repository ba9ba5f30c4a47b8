import { html, nothing, render } from 'lit-html';
import { api, ApiError, post, session } from '../api.ts';
import { field } from '../components/action-form.ts';
import { errorMessage } from '../components/message.ts';
import { ui } from '../locale.ts';

/**
 * Sign in with a user name and password, or paste an API token. `onSignedIn` runs once the token
 * works; a refusal is shown in #login-msg.
 */
export function renderLogin(main: HTMLElement, onSignedIn: () => Promise<void>): void {
  let failure: unknown = null;
  const draw = () =>
    render(
      html`<form class="login" id="login" @submit=${(e: SubmitEvent) => void submit(e).catch(reportError)}>
        <h2>${ui('login_title')}</h2>
        <label>${ui('login_username')} <input name="username" autocomplete="username" /></label>
        <label>${ui('login_password')} <input name="password" type="password" autocomplete="current-password" /></label>
        <p class="muted">${ui('login_or_token')}</p>
        <input name="token" placeholder=${ui('login_token_placeholder')} aria-label=${ui('login_token_label')} />
        <div id="login-msg">${failure ? errorMessage(failure) : nothing}</div>
        <p><button class="primary" type="submit">${ui('login_submit')}</button></p>
      </form>`,
      main,
    );
  async function submit(e: SubmitEvent) {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const value = (k: string) => field(form, k);
    try {
      if (value('token').trim()) {
        session.token = value('token').trim();
        await api('/api/me');
      } else {
        const r = await post('/api/login', {
          username: value('username'),
          password: value('password'),
        });
        session.token = r.token;
      }
      await onSignedIn();
    } catch (err) {
      session.token = null;
      failure = err instanceof ApiError && err.status === 401 ? new Error(ui('login_refused')) : err;
      draw();
    }
  }
  draw();
}
