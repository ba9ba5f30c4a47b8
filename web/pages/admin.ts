/**
 * 用户管理, for admins: every user with role, town, state, live sign-ins and last use; add a user (a
 * town user picks the town from the town layer); disable or enable, end every sign-in, set a new
 * password. The server checks each (the password floor, the town, an admin disabling themself) and its
 * refusal is shown as it words it.
 */
import { html, nothing, render } from 'lit-html';
import { api, path, post } from '../api.ts';
import { errorMessage, okMessage } from '../components/message.ts';
import type { AppContext } from '../context.ts';
import { localTime } from '../labels.ts';
import { t, ui } from '../locale.ts';
import type { Navigation } from '../router.ts';
import { field } from '../components/action-form.ts';

/** A user as GET /api/users answers (api/responses.ts). */

const ROLES = ['analyst', 'town', 'supervisor', 'admin'] as const;

export async function renderAdminPage(ctx: AppContext, nav: Navigation): Promise<void> {
  let [users, towns] = await Promise.all([
    api('/api/users'),
    api('/api/map/towns?z=0').then((b) => b.features.map((f) => f.properties)),
  ]);
  if (nav.stale()) return;
  const view = {
    message: null as ReturnType<typeof okMessage> | null,
    role: '',
    passwordFor: null as string | null,
  };
  const townName = (code: string | null) => (code ? (towns.find((x) => x.code === code)?.name ?? code) : '');
  const attempt = async (work: () => Promise<unknown>, done: string) => {
    try {
      await work();
      users = await api('/api/users');
      view.message = okMessage(done);
      view.passwordFor = null;
    } catch (err) {
      view.message = errorMessage(err);
    }
    draw();
  };
  const onCreate = (e: SubmitEvent) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const body = {
      username: field(form, 'username').trim(),
      display_name: field(form, 'display_name').trim() || undefined,
      role: field(form, 'role'),
      town_code: field(form, 'role') === 'town' ? field(form, 'town_code') : undefined,
      password: field(form, 'password') || undefined,
    };
    void attempt(
      async () => {
        await post('/api/users', body);
        form.reset();
        view.role = '';
      },
      ui('admin_created', { user: body.username }),
    );
  };
  const onPassword = (username: string) => (e: SubmitEvent) => {
    e.preventDefault();
    const password = field(e.currentTarget as HTMLFormElement, 'password');
    void attempt(
      () => post(path`/api/users/${username}/password`, { password }),
      ui('admin_password_set', { user: username }),
    );
  };
  const draw = () =>
    render(
      html`<div class="card">
          <h3>${ui('admin_users')} <small>${ui('admin_users_count', { count: users.length })}</small></h3>
          <div id="admin-msg">${view.message ?? nothing}</div>
          <table id="users">
            <tr>
              <th>${ui('admin_col_user')}</th>
              <th>${ui('admin_col_role')}</th>
              <th>${ui('col_town')}</th>
              <th>${ui('col_status')}</th>
              <th>${ui('admin_col_sessions')}</th>
              <th>${ui('admin_col_last_used')}</th>
              <th></th>
            </tr>
            ${users.map(
              (u) =>
                html`<tr data-user=${u.username}>
                  <td>${u.displayName || u.username}<br /><small>${u.username}</small></td>
                  <td>${t('role', u.role)}</td>
                  <td>${townName(u.townCode)}</td>
                  <td>${u.disabled ? ui('admin_disabled') : ui('admin_active')}</td>
                  <td>${u.activeTokens}</td>
                  <td>${u.lastUsedAt ? localTime(u.lastUsedAt) : '–'}</td>
                  <td class="row-actions">
                    <button
                      data-do=${u.disabled ? 'enable' : 'disable'}
                      ?disabled=${u.username === ctx.me.username}
                      @click=${() =>
                        attempt(
                          () => post(path`/api/users/${u.username}/${u.disabled ? 'enable' : 'disable'}`, {}),
                          ui(u.disabled ? 'admin_enabled_done' : 'admin_disabled_done', { user: u.username }),
                        )}
                    >
                      ${ui(u.disabled ? 'admin_enable' : 'admin_disable')}
                    </button>
                    <button
                      data-do="revoke"
                      ?disabled=${u.activeTokens === 0}
                      @click=${() =>
                        attempt(
                          () => post(path`/api/users/${u.username}/revoke`, {}),
                          ui('admin_revoked', { user: u.username }),
                        )}
                    >
                      ${ui('admin_revoke')}
                    </button>
                    <button
                      data-do="password"
                      @click=${() => {
                        view.passwordFor = view.passwordFor === u.username ? null : u.username;
                        draw();
                      }}
                    >
                      ${ui('admin_set_password')}
                    </button>
                    ${
                      view.passwordFor === u.username
                        ? html`<form class="inline" id="password-form" @submit=${onPassword(u.username)}>
                            <input
                              name="password"
                              type="password"
                              autocomplete="new-password"
                              minlength="10"
                              required
                              placeholder=${ui('admin_password_hint')}
                            />
                            <button class="primary">${ui('admin_password_save')}</button>
                          </form>`
                        : nothing
                    }
                  </td>
                </tr>`,
            )}
          </table>
        </div>
        <div class="card">
          <h3>${ui('admin_add_user')}</h3>
          <form id="new-user" class="actionform" @submit=${onCreate}>
            <label
              ><span class="label">${ui('admin_col_user')} *</span>
              <input name="username" required pattern="[A-Za-z0-9_.\\-]{2,64}" autocomplete="off" />
              <small>${ui('admin_username_hint')}</small></label
            >
            <label
              ><span class="label">${ui('admin_display_name')}</span><input name="display_name" maxlength="100"
            /></label>
            <label
              ><span class="label">${ui('admin_col_role')} *</span>
              <select
                name="role"
                required
                @change=${(e: Event) => {
                  view.role = (e.currentTarget as HTMLSelectElement).value;
                  draw();
                }}
              >
                <option value="" ?selected=${view.role === ''}>${ui('form_choose')}</option>
                ${ROLES.map((r) => html`<option value=${r} ?selected=${view.role === r}>${t('role', r)}</option>`)}
              </select></label
            >
            ${
              view.role === 'town'
                ? html`<label
                    ><span class="label">${ui('col_town')} *</span>
                    <select name="town_code" required>
                      <option value="">${ui('form_choose')}</option>
                      ${towns.map((x) => html`<option value=${x.code}>${x.name}（${x.code}）</option>`)}
                    </select></label
                  >`
                : nothing
            }
            <label
              ><span class="label">${ui('admin_password')}</span>
              <input name="password" type="password" autocomplete="new-password" minlength="10" />
              <small>${ui('admin_password_hint')}</small></label
            >
            <div><button class="primary" type="submit">${ui('admin_create')}</button></div>
          </form>
        </div>`,
      ctx.main,
    );
  draw();
}
