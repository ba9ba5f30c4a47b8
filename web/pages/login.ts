import { html, nothing, render } from 'lit-html';
import { api, ApiError, post, session } from '../api.ts';
import { field } from '../components/action-form.ts';
import { errorMessage } from '../components/message.ts';

/**
 * Sign in with a user name and password, or paste an API token. `onSignedIn` runs once the token
 * works; a refusal is shown in #login-msg.
 */
export function renderLogin(main: HTMLElement, onSignedIn: () => Promise<void>): void {
  let failure: unknown = null;
  const draw = () =>
    render(
      html`<form class="login" id="login" @submit=${(e: SubmitEvent) => void submit(e).catch(reportError)}>
        <h2>登录 Sign in</h2>
        <label>用户名 Username <input name="username" autocomplete="username" /></label>
        <label>密码 Password <input name="password" type="password" autocomplete="current-password" /></label>
        <p class="muted">或 or an API token</p>
        <input name="token" placeholder="token" aria-label="API token" />
        <div id="login-msg">${failure ? errorMessage(failure) : nothing}</div>
        <p><button class="primary" type="submit">登录 Sign in</button></p>
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
        const r = await post<{ token: string }>('/api/login', {
          username: value('username'),
          password: value('password'),
        });
        session.token = r.token;
      }
      await onSignedIn();
    } catch (err) {
      session.token = null;
      failure =
        err instanceof ApiError && err.status === 401
          ? new Error('用户名、密码或令牌无效 unknown user, wrong password or invalid token')
          : err;
      draw();
    }
  }
  draw();
}
