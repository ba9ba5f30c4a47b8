import { localeOf, render, say } from '../../i18n/say.ts';
import { z } from 'zod';
import { TubanError, UnauthorizedError } from '../../core/errors.ts';
import { login, revokeToken } from '../../store/users.ts';
import { answers, errors, ok, type RouteContext, type ZodApp } from '../context.ts';
import { HealthBody, TokenBody, UserBody } from '../../api/responses.ts';
import { FailureLimiter } from '../ratelimit.ts';
import { townName } from '../../store/layers.ts';
import { calendarStatus } from '../../workflow/calendar.ts';
import { notifyTrouble } from '../../store/notify.ts';

/** Login bodies are a name and a password: a few KB is plenty. */
export const LOGIN_BODY_LIMIT = 4 * 1024;

const LoginBody = z.object({ username: z.string().min(1), password: z.string().min(1) });

/** Health, login, the signed-in user, logout. */
export function sessionRoutes(app: ZodApp, ctx: RouteContext): void {
  const { config } = ctx;
  app.get(
    '/api/health',
    {
      schema: {
        summary:
          'Liveness, how many heavy exports run and wait, the years the working-day calendar covers (a warning from 60 days before its end), and messages the group robots refused this week',
        tags: ['session'],
        response: answers(HealthBody, 'ok, the work lines, the calendar, the robots'),
      },
    },
    async (req) => {
      const s = calendarStatus(ctx.env.calendar, ctx.env.today());
      return {
        ok: true as const,
        exports: ctx.heavyExports.stats,
        images: ctx.images.stats,
        calendar: {
          years: s.years,
          covered_until: s.covered_until,
          warning: s.warning ? render(s.warning, localeOf(req.headers['accept-language'])) : null,
        },
        // messages a group robot refused or that failed for good this week: an admin looks at GET /api/notify/outbox
        notifications: await notifyTrouble(ctx.db)
          .then(({ refused, failed }) => ({ refused, failed }))
          .catch(() => null),
      };
    },
  );

  const loginFailures = new FailureLimiter(config.TUBAN_LOGIN_WINDOW_S * 1000);
  app.post(
    '/api/login',
    {
      bodyLimit: LOGIN_BODY_LIMIT,
      schema: {
        summary: 'Exchange username and password for an API token (valid TUBAN_TOKEN_DAYS)',
        tags: ['session'],
        body: LoginBody,
        response: { ...answers(TokenBody, 'token, user and expires_at'), ...errors(400, 401, 429) },
      },
    },
    async (req, reply) => {
      const b = req.body;
      // by user name and address together: failures from elsewhere never lock a user out of their own phone
      const userKey = `user:${b.username.toLowerCase()}@${req.ip}`;
      const addressKey = `address:${req.ip}`;
      const release = loginFailures.reserve([
        { key: userKey, max: config.TUBAN_LOGIN_FAILURES_PER_USER, who: { username: b.username.slice(0, 64) } },
        { key: addressKey, max: config.TUBAN_LOGIN_FAILURES_PER_ADDRESS, who: { address: req.ip } },
      ]);
      const r = await ctx
        .audited(req, 200, async (trx) => {
          const ok = await login(trx, b.username, b.password, config.TUBAN_TOKEN_DAYS);
          if (!ok) throw new UnauthorizedError(say('login_failed'));
          return ok;
        })
        .catch((err) => {
          // a wrong password keeps its count; anything else (the database down) gives it back
          if (!(err instanceof TubanError && err.kind === 'unauthorized')) release();
          throw err;
        });
      release();
      loginFailures.clear(userKey);
      return reply.send({ token: r.token, user: r.user, expires_at: r.expiresAt });
    },
  );
  app.get(
    '/api/me',
    {
      schema: {
        summary: 'The signed-in user',
        tags: ['session'],
        response: { ...answers(UserBody, 'the user'), ...errors(401) },
      },
    },
    async (req) => {
      const me = ctx.me(req);
      // a town office reads its town's name, not its code
      return { ...me, townName: me.townCode ? await townName(ctx.db, me.townCode) : null };
    },
  );
  app.post(
    '/api/logout',
    {
      schema: {
        summary: 'Revoke the token this request came with',
        tags: ['session'],
        response: { ...ok('signed out', 204), ...errors(401) },
      },
    },
    async (req, reply) => {
      ctx.me(req);
      await ctx.audited(req, 204, (trx) => revokeToken(trx, req.token!));
      return reply.status(204).send();
    },
  );
}
