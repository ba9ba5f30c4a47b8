import { say } from '../../i18n/say.ts';
import { z } from 'zod';
import { BadInputError } from '../../core/errors.ts';
import { createUser, issueToken, listUsers, revokeTokens, setDisabled, setPassword } from '../../store/users.ts';
import { answers, errors, UsernameParams, type RouteContext, type ZodApp } from '../context.ts';
import { RevokedBody, TokenBody, UserBody as UserBodySchema, UserChangeBody, UsersBody } from '../../api/responses.ts';
import { LOGIN_BODY_LIMIT } from './session.ts';

const PasswordBody = z.object({
  password: z.string().describe('at least 10 characters, not only spaces, not the user name'),
});
const UserBody = z.object({
  username: z.string(),
  display_name: z.string().optional(),
  role: z.string().describe('analyst, town, supervisor or admin'),
  town_code: z.string().optional().describe('for town users: their town'),
  password: z.string().optional(),
});
const admin = (summary: string) => ({ summary: `${summary} (admin)`, tags: ['users'] });

/** User administration, for admins only (checked before the body): create, tokens, revoke, disable/enable, password. */
export function userRoutes(app: ZodApp, ctx: RouteContext): void {
  const { db, config, me } = ctx;
  const preValidation = ctx.roles('admin');
  app.get(
    '/api/users',
    {
      preValidation,
      schema: { ...admin('Users'), response: { ...answers(UsersBody, 'the users'), ...errors(401, 403) } },
    },
    async () => listUsers(db),
  );
  app.post(
    '/api/users',
    {
      preValidation,
      schema: {
        ...admin('Create a user'),
        body: UserBody,
        response: { 201: UserBodySchema.describe('the user'), ...errors(400, 401, 403, 409) },
      },
    },
    async (req, reply) => {
      const b = req.body;
      return reply.status(201).send(
        await ctx.audited(req, 201, (trx) =>
          createUser(trx, {
            username: b.username,
            displayName: b.display_name,
            role: b.role,
            townCode: b.town_code,
            password: b.password,
          }),
        ),
      );
    },
  );
  app.post(
    '/api/users/:username/tokens',
    {
      preValidation,
      schema: {
        ...admin('Issue an API token for a user, valid TUBAN_TOKEN_DAYS'),
        params: UsernameParams,
        response: { 201: TokenBody.describe('token, user and expires_at'), ...errors(401, 403, 404) },
      },
    },
    async (req, reply) => {
      const r = await ctx.audited(req, 201, (trx) =>
        issueToken(trx, req.params.username, 'issued by admin', config.TUBAN_TOKEN_DAYS),
      );
      return reply.status(201).send({ token: r.token, user: r.user, expires_at: r.expiresAt });
    },
  );
  // an admin ends a user's sessions, locks them out or lets them back, or sets their password (which ends their sessions)
  app.post(
    '/api/users/:username/revoke',
    {
      preValidation,
      schema: {
        ...admin('Revoke every live token of a user: all their sessions end'),
        params: UsernameParams,
        response: { ...answers(RevokedBody, 'how many tokens were revoked'), ...errors(401, 403, 404) },
      },
    },
    async (req) => ({ revoked: await ctx.audited(req, 200, (trx) => revokeTokens(trx, req.params.username)) }),
  );
  for (const [path, disabled] of [
    ['disable', true],
    ['enable', false],
  ] as const) {
    const summary = disabled ? 'Disable a user: no login, every token revoked' : 'Let a disabled user log in again';
    app.post(
      `/api/users/:username/${path}`,
      {
        preValidation,
        schema: {
          ...admin(summary),
          params: UsernameParams,
          response: { ...answers(UserChangeBody, 'the user, and tokens revoked'), ...errors(400, 401, 403, 404) },
        },
      },
      async (req) => {
        const username = req.params.username;
        if (disabled && username === me(req).username)
          throw new BadInputError('bad_request', say('admin_self_disable'), {
            field: 'username',
          });
        const r = await ctx.audited(req, 200, (trx) => setDisabled(trx, username, disabled));
        return { user: r.user, disabled, revoked: r.revoked };
      },
    );
  }
  app.post(
    '/api/users/:username/password',
    {
      bodyLimit: LOGIN_BODY_LIMIT,
      preValidation,
      schema: {
        ...admin("Set a user's password; revokes their tokens"),
        params: UsernameParams,
        body: PasswordBody,
        response: { ...answers(UserChangeBody, 'the user, and tokens revoked'), ...errors(400, 401, 403, 404) },
      },
    },
    async (req) => {
      const r = await ctx.audited(req, 200, (trx) => setPassword(trx, req.params.username, req.body.password));
      return { user: r.user, revoked: r.revoked };
    },
  );
}
