import { say } from '../i18n/say.ts';
import { ChipPool } from '../export/chip.pool.ts';
import { townScope } from '../store/db.ts';
import { randomUUID } from 'node:crypto';
import fastifySwagger from '@fastify/swagger';
import { cjkFontOrNull } from '../export/fonts.ts';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Redis } from 'ioredis';
import type { Config } from '../config/env.ts';
import { BadInputError, ForbiddenError, UnauthorizedError } from '../core/errors.ts';
import { GeoTiffCache } from '../pipeline/io/geotiff.source.ts';
import { createLogger, type Logger } from '../core/log.ts';
import type { Db } from '../store/db.ts';
import { userForToken, type User } from '../store/users.ts';
import { provisionalCount, refreshCalendar } from '../store/calendar.ts';
import { coveredUntil } from '../workflow/calendar.ts';
import type { WorkflowEnv } from '../workflow/env.ts';
import { BatchProgressReader } from '../workers/batch.progress.ts';
import { summariseBody, writeAudit, type AuditEntry } from './audit.ts';
import type { RouteContext } from './context.ts';
import { WorkGate } from './gate.ts';
import { OPEN_ROUTES, swaggerOptions } from './openapi.ts';
import { batchRoutes } from './routes/batches.ts';
import { calendarRoutes } from './routes/calendar.ts';
import { evidenceRoutes } from './routes/evidence.ts';
import { exportRoutes } from './routes/export.ts';
import { mapRoutes } from './routes/map.ts';
import { bulkRoutes, patchRoutes } from './routes/patches.ts';
import { reportRoutes } from './routes/reports.ts';
import { sessionRoutes } from './routes/session.ts';
import { userRoutes } from './routes/users.ts';
import { modelRoutes } from './routes/models.ts';
import { notifyRoutes } from './routes/notify.ts';
import { notifyKicker } from '../workers/notify.kick.ts';
import { pickEncoding, type WebAssets } from './web.ts';
import { asText, findBadText } from '../core/text.ts';
import { refusals } from './refusals.ts';

declare module 'fastify' {
  interface FastifyRequest {
    user?: User;
    /** The bearer token the request came with (for logout). */
    token?: string;
    /** Set once the request's audit row is written in the transaction of its change. */
    audited?: boolean;
    /** The body as the client sent it, before validation strips or converts it: the audit summarises this. */
    sentBody?: unknown;
  }
}

export interface ServerOptions {
  db: Db;
  config: Config;
  env: WorkflowEnv;
  evidenceMaxBytes?: number;
  /** The bundled web app to serve at / (see server/web.ts); absent: API only. */
  web?: WebAssets;
  /** Redis for live batch progress; absent: the batch pages show database state only. */
  redis?: Redis;
  /** Where unexpected errors (500s) are logged with their request id; default: JSON lines on stderr. */
  log?: Logger;
}

/** The largest body a route takes unless it says more (its own bodyLimit). */
const DEFAULT_BODY_LIMIT = 64 * 1024;

/** How often a server reads the calendar's years from the database again. */
const CALENDAR_REFRESH_MS = 5 * 60_000;

/** The web app's content security policy: everything from this server, images also as data:/blob: URLs (chips fetched with the token). */
const CSP_HTML =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
/**
 * The HTTP API. Every route but login, health and the OpenAPI document needs a bearer token;
 * every query is scoped to the user's town for town users (another town's patch is a 404);
 * every mutating request is recorded in the append-only audit_event table.
 */
export async function buildServer(opts: ServerOptions): Promise<FastifyInstance> {
  const { db, config, env } = opts;
  const log = opts.log ?? createLogger();
  // requestTimeout: a client gets 5 minutes to send its request (a 20 MB photo on a slow line), then the socket is closed.
  // handlerTimeout: a request not answered within TUBAN_HTTP_TIMEOUT_S gets 503 and its req.signal aborts (routes may
  // set their own, as the export does); req.signal also aborts when the client goes away.
  // bodies are small unless a route says otherwise (an action 16 KB, a bulk move 512 KB, a photo the evidence limit):
  // nobody sends 20 MB of JSON to a note
  const app = Fastify({
    logger: false,
    bodyLimit: DEFAULT_BODY_LIMIT,
    genReqId: () => randomUUID(),
    requestTimeout: 300_000,
    handlerTimeout: config.TUBAN_HTTP_TIMEOUT_S * 1000,
  });
  const maxEvidence = opts.evidenceMaxBytes ?? 20 * 1024 * 1024;
  for (const type of ['image/jpeg', 'image/png', 'application/pdf', 'application/octet-stream']) {
    app.addContentTypeParser(type, { parseAs: 'buffer', bodyLimit: DEFAULT_BODY_LIMIT }, (_req, body, done) =>
      done(null, body),
    );
  }
  // every route declares its params, query and body as zod schemas: they validate the request, type the handler and make the OpenAPI document
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  await app.register(fastifySwagger, swaggerOptions());

  app.setErrorHandler(refusals({ log, defaultTimeoutS: config.TUBAN_HTTP_TIMEOUT_S }));
  // every response: no type sniffing, no framing; the web app's pages also get a content security policy
  app.addHook('onSend', async (req, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff').header('referrer-policy', 'no-referrer');
    const type = String(reply.getHeader('content-type') ?? '');
    // the service worker's script carries its own policy: it fetches from this server and nowhere else
    reply.header(
      'content-security-policy',
      type.startsWith('text/html')
        ? CSP_HTML
        : req.routeOptions.url === '/sw.js'
          ? "default-src 'self'; img-src 'self' data: blob:; frame-ancestors 'none'"
          : "default-src 'none'; frame-ancestors 'none'",
    );
    reply.header('x-frame-options', 'DENY');
    return payload;
  });

  // the calendar: the database's years over the file's, refreshed every few minutes (a year added on another
  // host arrives), and a warning in the log once a day while some open deadline lies past its end
  await refreshCalendar(db, env);
  let warnedOn = '';
  const watchCalendar = setInterval(() => {
    void (async () => {
      const cal = await refreshCalendar(db, env);
      const today = env.today();
      if (warnedOn === today) return;
      const n = await provisionalCount(db, cal);
      if (n > 0) {
        log.warn('Calendar:ProvisionalDeadlines', {
          deadlines: n,
          coveredUntil: coveredUntil(cal),
          next: cal.years[1] + 1,
        });
        warnedOn = today;
      }
    })().catch((err: Error) => log.warn('Calendar:RefreshFailed', { message: err.message }));
  }, CALENDAR_REFRESH_MS);
  watchCalendar.unref();
  app.addHook('onClose', async () => clearInterval(watchCalendar));

  const sources = new GeoTiffCache();
  const chips = new ChipPool();
  const progress = new BatchProgressReader(db, config, opts.redis);
  app.addHook('onClose', async () => {
    await sources.close();
    await progress.close();
    await chips.close();
  });
  if (opts.web) {
    // the hashed bundle is kept a year; the page, manifest and worker are asked after each time (ETag, 304);
    // each sent compressed when the browser takes it (a weak signal: 556 KB of script is about 150 KB in brotli)
    for (const [path, file] of opts.web.files) {
      app.get(path, { schema: { hide: true } }, async (req, reply) => {
        reply
          .header('content-type', file.type)
          .header('cache-control', file.immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
          .header('etag', file.etag)
          .header('vary', 'accept-encoding');
        if (path === '/sw.js') reply.header('service-worker-allowed', '/');
        const match = req.headers['if-none-match'];
        if (match && match.split(',').some((t) => t.trim().replace(/^W\//, '') === file.etag))
          return reply.status(304).send();
        const encoding = pickEncoding(req.headers['accept-encoding'], file);
        if (encoding) reply.header('content-encoding', encoding);
        return reply.send(encoding ? file[encoding] : file.body);
      });
    }
  }
  // each request runs in its own town scope: a town user's queries are held to the town by the
  // database too (row-level security, store/db.ts), whatever the query says
  app.addHook('onRequest', (_req, _reply, done) => townScope.run({ town: null }, done));
  app.addHook('onRequest', async (req: FastifyRequest) => {
    // Decide by the route that matched, not the raw URL: Fastify decodes the path before routing,
    // so /%61pi/... reaches an /api/ route while its raw URL does not start with /api/.
    const route = req.routeOptions.url;
    if (route === undefined || !route.startsWith('/api/') || OPEN_ROUTES.has(route)) return;
    const m = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
    const user = m ? await userForToken(db, m[1]) : null;
    if (!user) throw new UnauthorizedError(say('sign_in_needed'));
    req.user = user;
    req.token = m![1];
    const scope = townScope.getStore();
    if (scope && user.role === 'town') scope.town = user.townCode;
  });
  app.addHook('preValidation', async (req) => {
    req.sentBody = req.body;
    // no NUL and no half UTF-16 pair enters anywhere: said with the field, before any route reads it
    const bad = findBadText({ params: req.params, query: req.query, body: req.body });
    if (bad)
      throw new BadInputError(
        'bad_text',
        say(bad.problem === 'nul' ? 'text_nul' : 'text_surrogate', { field: bad.field }),
        {
          field: bad.field,
        },
      );
  });
  const auditEntry = (req: FastifyRequest, status: number): AuditEntry => ({
    userId: req.user?.id ?? null,
    username:
      req.user?.username ??
      (req.routeOptions.url === '/api/login'
        ? asText((req.sentBody as { username?: unknown } | undefined)?.username)
        : null),
    remoteAddr: req.ip,
    method: req.method,
    path: req.url,
    status,
    detail: { body: summariseBody(req.sentBody ?? req.body) },
  });
  // a change that may have written messages (a move, a bulk move, a test message) has them relayed at once
  const notifier = notifyKicker(config, opts.redis, log);
  app.addHook('onClose', async () => notifier.close());
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? '';
    if (req.method === 'POST' && reply.statusCode < 300 && /^\/api\/(patches|notify)\//.test(route)) notifier.kick();
  });
  // refusals' audit rows are written after the answer; closing the server waits for those still being written
  // (a server stopped, or a test's schema dropped, under an insert would lose the row or deadlock with it)
  const auditsInFlight = new Set<Promise<void>>();
  app.addHook('onClose', async () => {
    await Promise.all(auditsInFlight);
  });
  app.addHook('onResponse', async (req, reply) => {
    if (['GET', 'HEAD', 'OPTIONS'].includes(req.method) || req.audited) return;
    // a change always writes its row in its own transaction: reaching here with a success is a bug, said loudly
    if (reply.statusCode < 400)
      log.error('Audit:NotInTransaction', { requestId: req.id, method: req.method, path: req.url.slice(0, 500) });
    const write = writeAudit(db, auditEntry(req, reply.statusCode)).catch((err: unknown) => {
      log.error('Audit:WriteFailed', {
        requestId: req.id,
        method: req.method,
        path: req.url.slice(0, 500),
        status: reply.statusCode,
        error: (err as Error).message,
      });
    });
    auditsInFlight.add(write);
    try {
      await write;
    } finally {
      auditsInFlight.delete(write);
    }
  });
  const me = (req: FastifyRequest): User => {
    if (!req.user) throw new UnauthorizedError(say('sign_in_needed'));
    return req.user;
  };
  const ctx: RouteContext = {
    db,
    config,
    env,
    log,
    sources,
    progress,
    heavyExports: new WorkGate(
      'PDF/zip exports',
      say('busy_exports'),
      config.TUBAN_EXPORT_CONCURRENCY,
      config.TUBAN_EXPORT_QUEUE,
    ),
    // a page of 50 chips at once takes them 4 at a time, in line; each is drawn in the chip threads
    images: new WorkGate('chips and thumbnails', say('busy_images'), 4, 200),
    chips,
    maxEvidenceBytes: maxEvidence,
    stampFont: cjkFontOrNull(config.TUBAN_PDF_FONT),
    me,
    roles:
      (...roles) =>
      async (req) => {
        if (!roles.includes(me(req).role)) throw new ForbiddenError(say('role_needed', { roles, role: me(req).role }));
      },
    // A request that fails changes nothing; its refusal is recorded after the response (onResponse above).
    audited: async (req, status, work, detail) => {
      const out = await db.transaction(async (trx) => {
        const r = await work(trx);
        const entry = auditEntry(req, typeof status === 'function' ? status(r) : status);
        await writeAudit(trx, detail ? { ...entry, detail: { ...(entry.detail as object), ...detail(r) } } : entry);
        return r;
      });
      req.audited = true;
      return out;
    },
  };

  const api = app.withTypeProvider<ZodTypeProvider>();
  for (const routes of [
    sessionRoutes,
    patchRoutes,
    mapRoutes,
    evidenceRoutes,
    exportRoutes,
    reportRoutes,
    batchRoutes,
    userRoutes,
    modelRoutes,
    calendarRoutes,
    bulkRoutes,
    notifyRoutes,
  ])
    routes(api, ctx);
  api.get('/api/openapi.json', { schema: { summary: 'This OpenAPI 3.1 description', tags: ['session'] } }, async () =>
    app.swagger(),
  );
  return app;
}
