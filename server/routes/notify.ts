import { z } from 'zod';
import {
  addChannel,
  ChannelBody,
  ChannelPatch,
  listChannels,
  listOutbox,
  queueTest,
  updateChannel,
} from '../../store/notify.ts';
import { errors, ok, RowId, type RouteContext, type ZodApp } from '../context.ts';

const ChannelParams = z.object({ id: RowId('channel id') });
const OutboxQuery = z.object({
  status: z.enum(['pending', 'sending', 'sent', 'refused', 'failed', 'cancelled']).optional(),
  channel: z.coerce.number().int().positive().optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
});
const admin = (summary: string) => ({ summary: `${summary} (admin)`, tags: ['notifications'] });

/**
 * The group robots (企业微信, 钉钉) that hear of dispatches, deadlines, send-backs and escalations, for
 * admins only: channels per town and for the supervisors (webhooks and secrets never shown back), a
 * test message, and the outbox — what was sent, what a robot refused and why.
 */
export function notifyRoutes(app: ZodApp, ctx: RouteContext): void {
  const { db, me, env } = ctx;
  const preValidation = ctx.roles('admin');
  app.get(
    '/api/notify/channels',
    {
      preValidation,
      schema: {
        ...admin('Notification channels, their last success and refusal'),
        response: { ...ok('the channels'), ...errors(401, 403) },
      },
    },
    async () => listChannels(db),
  );
  app.post(
    '/api/notify/channels',
    {
      preValidation,
      bodyLimit: 16 * 1024,
      schema: {
        ...admin("Add a group robot: a town's group, or the supervisors' (no town)"),
        body: ChannelBody,
        response: { ...ok('the channel, its webhook masked', 201), ...errors(400, 401, 403, 409) },
      },
    },
    async (req, reply) =>
      reply.status(201).send(await ctx.audited(req, 201, (trx) => addChannel(trx, me(req).username, req.body))),
  );
  app.patch(
    '/api/notify/channels/:id',
    {
      preValidation,
      bodyLimit: 16 * 1024,
      schema: {
        ...admin('Switch a channel off or on, or change its webhook, secret or events'),
        params: ChannelParams,
        body: ChannelPatch,
        response: { ...ok('the channel'), ...errors(400, 401, 403, 404) },
      },
    },
    async (req) => ctx.audited(req, 200, (trx) => updateChannel(trx, req.params.id, req.body)),
  );
  app.post(
    '/api/notify/channels/:id/test',
    {
      preValidation,
      schema: {
        ...admin('Send a test message through the outbox'),
        params: ChannelParams,
        response: { ...ok('the message key'), ...errors(401, 403, 404) },
      },
    },
    async (req) => ctx.audited(req, 200, (trx) => queueTest(trx, req.params.id, me(req).username, env.today())),
  );
  app.get(
    '/api/notify/outbox',
    {
      preValidation,
      schema: {
        ...admin("Recent messages, newest first: state, tries, the robot's last answer"),
        querystring: OutboxQuery,
        response: { ...ok('the messages'), ...errors(400, 401, 403) },
      },
    },
    async (req) => listOutbox(db, req.query),
  );
}
