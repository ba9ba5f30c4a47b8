import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Config } from '../config/env.ts';
import { BadInputError, TransientError, TubanError, UnauthorizedError, errorFate } from '../pipeline/errors.ts';
import { addEvidence, readEvidence } from '../store/evidence.ts';
import type { Db } from '../store/db.ts';
import { monthlyTownReport, supervisorBoard } from '../store/reports.ts';
import { EXPORT_FORMATS, exportPatches, patchChip } from '../store/export.ts';
import { createReadStream, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { zipFiles } from '../export/zip.ts';
import { downloadName, safeName } from '../export/names.ts';
import { createUser, issueToken, listUsers, login, revokeToken, revokeTokens, setDisabled, setPassword, userForToken, type User } from '../store/users.ts';
import { FailureLimiter } from './ratelimit.ts';
import { addNote, applyAction, listPatchesFor, patchDetail, scopedPatch, type WorkflowEnv } from '../store/workflow.ts';
import { ActionBodies, PatchQuerySchema, TownCode } from '../workflow/actions.schema.ts';
import { ACTIONS, RULES, type Action } from '../workflow/lifecycle.ts';
import { jsonSchema, openApiDocument } from './openapi.ts';
import { WorkGate } from './gate.ts';
import { summariseBody, writeAudit, type AuditEntry } from './audit.ts';
import type { Knex } from 'knex';
import type { WebAssets } from './web.ts';
import type { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { createLogger, type Logger } from '../pipeline/log.ts';
import { mapConfig, patchTrend, renderMapTile } from '../store/map.ts';
import { GeoTiffCache } from '../pipeline/geotiff.source.ts';
import { BatchProgressReader, recentBatches } from '../workers/batch.progress.ts';

declare module 'fastify' {
  interface FastifyRequest {
    user?: User;
    /** The bearer token the request came with (for logout). */
    token?: string;
    /** Set once the request's audit row is written in the transaction of its change. */
    audited?: boolean;
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

/** The web app's content security policy: everything from this server, images also as data:/blob: URLs (chips fetched with the token). */
const CSP_HTML = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
/** Login bodies are a name and a password: a few KB is plenty. */
const LOGIN_BODY_LIMIT = 4 * 1024;

const LoginBody = z.object({ username: z.string().min(1), password: z.string().min(1) });
const PasswordBody = z.object({ password: z.string() });
const UserBody = z.object({ username: z.string(), display_name: z.string().optional(), role: z.string(), town_code: z.string().optional(), password: z.string().optional() });
const MonthQuery = z.object({ month: z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'YYYY-MM') });
const ExportQuery = z.object({ month: z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'YYYY-MM'), town: TownCode.optional(), format: z.enum(EXPORT_FORMATS) });
const BoardQuery = z.object({ days: z.coerce.number().int().min(0).max(60).default(3) });
const TrendQuery = z.object({ month: z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'YYYY-MM'), months: z.coerce.number().int().min(1).max(60).default(12) });
const TileParams = z.object({ month: z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'YYYY-MM'), z: z.coerce.number().int(), x: z.coerce.number().int(), y: z.coerce.number().int() });
const ChipParams = z.object({ code: z.string(), which: z.enum(['before', 'after', 'overview']) });

/** A row id from a path: digits only, within what a bigint column holds. */
function idParam(value: string, what: string): number {
  const id = Number(value);
  if (!/^\d{1,15}$/.test(value) || !Number.isSafeInteger(id)) throw new BadInputError('bad_request', `${what} must be a whole number, got "${value.slice(0, 40)}"`, { field: what });
  return id;
}

function parse<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value ?? {});
  if (!r.success) throw new BadInputError('bad_request', `${what}: ${r.error.issues.map((i) => `${i.path.join('.') || what}: ${i.message}`).join('; ')}`);
  return r.data;
}

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
  const app = Fastify({ logger: false, bodyLimit: opts.evidenceMaxBytes ?? 20 * 1024 * 1024, genReqId: () => randomUUID(), requestTimeout: 300_000, handlerTimeout: config.TUBAN_HTTP_TIMEOUT_S * 1000 });
  const maxEvidence = opts.evidenceMaxBytes ?? 20 * 1024 * 1024;
  for (const type of ['image/jpeg', 'image/png', 'application/pdf', 'application/octet-stream']) {
    app.addContentTypeParser(type, { parseAs: 'buffer', bodyLimit: maxEvidence + 1 }, (_req, body, done) => done(null, body));
  }

  app.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
    if (err instanceof TubanError) {
      const status = errorFate[err.kind].httpStatus;
      if (typeof err.detail.retryAfterS === 'number') reply.header('retry-after', String(err.detail.retryAfterS));
      return reply.status(status).send({ error: err.kind, code: 'code' in err ? err.code : err.kind, message: err.message, ...(err.detail.allowed ? { allowed: err.detail.allowed } : {}) });
    }
    if (err.statusCode && err.statusCode < 500) return reply.status(err.statusCode).send({ error: 'bad_input', message: err.message });
    if ((err as { code?: string }).code === 'FST_ERR_HANDLER_TIMEOUT') {
      const limitS = Math.round((req.routeOptions.handlerTimeout ?? config.TUBAN_HTTP_TIMEOUT_S * 1000) / 1000);
      log.warn('Http:TimedOut', { requestId: req.id, method: req.method, path: req.url.slice(0, 500), limitS });
      return reply.status(503).header('retry-after', '30').send({ error: 'transient', message: `the request took longer than ${limitS} s and was given up; try again, or narrow it (a month, a town)`, request_id: req.id });
    }
    log.error('Http:InternalError', { requestId: req.id, method: req.method, path: req.url.slice(0, 500), user: req.user?.username ?? null, error: err.message, stack: err.stack });
    return reply.status(500).send({ error: 'internal', message: `internal error; the server log has it under request id ${req.id}`, request_id: req.id });
  });
  // every response: no type sniffing, no framing; the web app's pages also get a content security policy
  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff').header('referrer-policy', 'no-referrer');
    const type = String(reply.getHeader('content-type') ?? '');
    reply.header('content-security-policy', type.startsWith('text/html') ? CSP_HTML : "default-src 'none'; frame-ancestors 'none'");
    reply.header('x-frame-options', 'DENY');
    return payload;
  });

  const open = new Set(['/api/login', '/api/health', '/api/openapi.json']);
  const sources = new GeoTiffCache();
  const progress = new BatchProgressReader(db, config, opts.redis);
  app.addHook('onClose', async () => {
    await sources.close();
    await progress.close();
  });
  if (opts.web) {
    for (const [path, file] of opts.web.files) {
      app.get(path, async (_req, reply) => reply.header('content-type', file.type).header('cache-control', 'no-cache').send(file.body));
    }
  }
  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    // Decide by the route that matched, not the raw URL: Fastify decodes the path before routing,
    // so /%61pi/... reaches an /api/ route while its raw URL does not start with /api/.
    const route = req.routeOptions.url;
    if (route === undefined || !route.startsWith('/api/') || open.has(route)) return;
    const auth = req.headers.authorization ?? '';
    const m = /^Bearer (\S+)$/.exec(auth);
    const user = m ? await userForToken(db, m[1]) : null;
    if (!user) throw new UnauthorizedError('send Authorization: Bearer <token> (POST /api/login issues one)');
    req.user = user;
    req.token = m![1];
  });
  const auditEntry = (req: FastifyRequest, status: number): AuditEntry => ({
    userId: req.user?.id ?? null,
    username: req.user?.username ?? (req.routeOptions.url === '/api/login' ? String((req.body as { username?: unknown } | undefined)?.username ?? '') : null),
    remoteAddr: req.ip,
    method: req.method,
    path: req.url,
    status,
    detail: { body: summariseBody(req.body) },
  });
  /**
   * Runs a change and writes its audit row in one transaction: both are kept or neither. A
   * request that fails changes nothing; its refusal is recorded after the response (below).
   */
  const audited = async <T>(req: FastifyRequest, status: number, work: (trx: Knex) => Promise<T>): Promise<T> => {
    const out = await db.transaction(async (trx) => {
      const r = await work(trx);
      await writeAudit(trx, auditEntry(req, status));
      return r;
    });
    req.audited = true;
    return out;
  };
  app.addHook('onResponse', async (req, reply) => {
    if (['GET', 'HEAD', 'OPTIONS'].includes(req.method) || req.audited) return;
    // a change always writes its row in its own transaction: reaching here with a success is a bug, said loudly
    if (reply.statusCode < 400) log.error('Audit:NotInTransaction', { requestId: req.id, method: req.method, path: req.url.slice(0, 500) });
    try {
      await writeAudit(db, auditEntry(req, reply.statusCode));
    } catch (err) {
      log.error('Audit:WriteFailed', { requestId: req.id, method: req.method, path: req.url.slice(0, 500), status: reply.statusCode, error: (err as Error).message });
    }
  });
  const me = (req: FastifyRequest): User => {
    if (!req.user) throw new UnauthorizedError('send Authorization: Bearer <token> (POST /api/login issues one)');
    return req.user;
  };
  const requireRole = (req: FastifyRequest, ...roles: User['role'][]) => {
    if (!roles.includes(me(req).role)) throw new TubanError('forbidden', `this needs role ${roles.join(' or ')}; you are ${me(req).role}`);
  };

  // PDF sheets and town packages cut imagery for every patch: a few at a time, a short line, the rest refused
  const heavyExports = new WorkGate('PDF/zip exports', config.TUBAN_EXPORT_CONCURRENCY, config.TUBAN_EXPORT_QUEUE);
  app.get('/api/health', async () => ({ ok: true, exports: heavyExports.stats }));
  app.get('/api/openapi.json', async () => openApiDocument());

  const loginFailures = new FailureLimiter(config.TUBAN_LOGIN_WINDOW_S * 1000);
  app.post('/api/login', { bodyLimit: LOGIN_BODY_LIMIT }, async (req, reply) => {
    const b = parse(LoginBody, req.body, 'login');
    const userKey = `user:${b.username.toLowerCase()}`;
    const addressKey = `address:${req.ip}`;
    loginFailures.check([
      { key: userKey, max: config.TUBAN_LOGIN_FAILURES_PER_USER, what: `for ${b.username.slice(0, 64)}` },
      { key: addressKey, max: config.TUBAN_LOGIN_FAILURES_PER_ADDRESS, what: `from ${req.ip}` },
    ]);
    const r = await audited(req, 200, async (trx) => {
      const ok = await login(trx, b.username, b.password, config.TUBAN_TOKEN_DAYS);
      if (!ok) throw new UnauthorizedError('unknown user or wrong password');
      return ok;
    }).catch((err) => {
      if (err instanceof TubanError && err.kind === 'unauthorized') loginFailures.fail([userKey, addressKey]);
      throw err;
    });
    loginFailures.clear(userKey);
    return reply.send({ token: r.token, user: r.user, expires_at: r.expiresAt });
  });
  app.get('/api/me', async (req) => me(req));
  app.post('/api/logout', async (req, reply) => {
    me(req);
    await audited(req, 204, (trx) => revokeToken(trx, req.token!));
    return reply.status(204).send();
  });

  app.get('/api/patches', async (req) => listPatchesFor(db, me(req), parse(PatchQuerySchema, req.query, 'query')));
  /** The same list as GeoJSON in the storage CRS (the web map's CRS), scoped the same way. */
  app.get('/api/map/patches', async (req, reply) => {
    const r = await listPatchesFor(db, me(req), parse(PatchQuerySchema, req.query, 'query'), { withGeometry: true });
    const features = r.patches.map(({ geom, ...props }) => ({ type: 'Feature', id: props.code, geometry: geom, properties: props }));
    return reply.header('content-type', 'application/geo+json').send({ type: 'FeatureCollection', total: r.total, crs: { type: 'name', properties: { name: `EPSG:${config.TUBAN_STORAGE_SRID}` } }, features });
  });
  app.get('/api/map/config', async () => mapConfig(db, config.TUBAN_STORAGE_SRID));
  app.get('/api/map/tiles/:month/:z/:x/:y', async (req, reply) => {
    const p = parse(TileParams, { ...(req.params as object), y: String((req.params as { y: string }).y).replace(/\.png$/, '') }, 'tile');
    const png = await renderMapTile(db, sources, config.TUBAN_STORAGE_SRID, p.month, p.z, p.x, p.y, me(req));
    if (!png) return reply.status(204).header('cache-control', 'private, max-age=3600').send();
    return reply.header('content-type', 'image/png').header('cache-control', 'private, max-age=3600').send(png);
  });
  app.get('/api/patches/:code/chips/:which', async (req, reply) => {
    const p = parse(ChipParams, { ...(req.params as object), which: String((req.params as { which: string }).which).replace(/\.png$/, '') }, 'chip');
    const patch = await scopedPatch(db, me(req), p.code);
    const month = p.which === 'before' ? patch.baseline_month : patch.month;
    const png = await patchChip(db, (path) => sources.open(path), patch.code, month, p.which === 'overview' ? 'overview' : 'detail', p.which === 'before' ? '#ffd400' : '#ff2020');
    if (!png) return reply.status(204).send();
    return reply.header('content-type', 'image/png').header('cache-control', 'private, max-age=600').send(png);
  });
  const meta = { actions: Object.fromEntries(Object.entries(ActionBodies).map(([name, body]) => [name, { label: RULES[name as Action].label, from: RULES[name as Action].from, roles: RULES[name as Action].roles, schema: jsonSchema(body) }])) };
  app.get('/api/meta', async () => meta);
  app.get('/api/patches/:code', async (req) => patchDetail(db, me(req), (req.params as { code: string }).code));
  app.post('/api/patches/:code/actions/:action', async (req) => {
    const { code, action } = req.params as { code: string; action: string };
    if (!(ACTIONS as string[]).includes(action)) throw new BadInputError('bad_action', `unknown action "${action}"; actions: ${ACTIONS.join(', ')}`);
    return audited(req, 200, (trx) => applyAction(trx, env, me(req), code, action as Action, req.body));
  });
  app.post('/api/patches/:code/notes', async (req, reply) => {
    const { code } = req.params as { code: string };
    return reply.status(201).send(await audited(req, 201, (trx) => addNote(trx, me(req), code, (req.body as { text?: unknown } | undefined)?.text)));
  });
  app.post('/api/patches/:code/evidence', async (req, reply) => {
    const { code } = req.params as { code: string };
    const q = req.query as { filename?: string; note?: string };
    if (!Buffer.isBuffer(req.body)) throw new BadInputError('bad_body', 'send the file as the request body with Content-Type image/jpeg, image/png or application/pdf');
    const bytes = req.body;
    const r = await audited(req, 201, (trx) => addEvidence(trx, config.dataDir, maxEvidence, me(req), code, { filename: q.filename ?? 'evidence', bytes, note: q.note }));
    return reply.status(201).send(r);
  });
  app.get('/api/evidence/:id', async (req, reply) => {
    const id = idParam((req.params as { id: string }).id, 'evidence id');
    const f = await readEvidence(db, me(req), id);
    // the type is the one the upload's magic bytes proved; the name keeps the uploader's stem with the extension of that type
    const ext = { 'image/jpeg': 'jpg', 'image/png': 'png', 'application/pdf': 'pdf' }[f.contentType] ?? 'bin';
    const name = `${safeName(f.filename.replace(/\.[^.]*$/, ''), 'evidence')}.${ext}`;
    return reply.header('content-type', f.contentType).header('content-disposition', `attachment; filename="${downloadName(name)}"; filename*=UTF-8''${encodeURIComponent(name)}`).send(f.bytes);
  });

  // the export has a longer time limit; req.signal stops its work when that passes or the client goes away
  app.get('/api/export', { handlerTimeout: config.TUBAN_EXPORT_TIMEOUT_S * 1000 }, async (req, reply) => {
    const q = parse(ExportQuery, req.query, 'query');
    const work = (signal: AbortSignal) => makeExport(req, q, signal);
    let r: Awaited<ReturnType<typeof makeExport>>;
    try {
      r = q.format === 'pdf' || q.format === 'zip' ? await heavyExports.run(req.signal, work) : await work(req.signal);
    } catch (err) {
      if (!req.signal.aborted) throw err;
      const reason = req.socket?.destroyed ? 'the client went away before the export was sent' : `the export took longer than ${config.TUBAN_EXPORT_TIMEOUT_S} s and was stopped; export one town at a time`;
      log.warn('Export:Stopped', { requestId: req.id, format: q.format, month: q.month, reason });
      throw new TransientError(reason);
    }
    const stream = createReadStream(r.file);
    stream.once('close', r.cleanup);
    return reply.header('content-type', r.type).header('content-length', statSync(r.file).size)
      .header('content-disposition', `attachment; filename="${downloadName(r.name)}"; filename*=UTF-8''${encodeURIComponent(r.name)}`).send(stream);
  });
  async function makeExport(req: FastifyRequest, q: z.infer<typeof ExportQuery>, signal: AbortSignal) {
    // every path here is made by the server: a fresh folder under the data folder, fixed file names;
    // the town only filters rows and, sanitised, names the download
    const work = join(config.dataDir, 'tmp');
    mkdirSync(work, { recursive: true });
    const dir = mkdtempSync(join(work, 'export-'));
    const cleanup = () => rmSync(dir, { recursive: true, force: true });
    try {
      const ext = q.format === 'shp' ? 'zip' : q.format;
      const out = join(dir, q.format === 'shp' ? 'shp' : `export.${ext}`);
      const r = await exportPatches(db, env, { month: q.month, town: q.town ?? null, format: q.format, outPath: out, user: me(req), storageSrid: config.TUBAN_STORAGE_SRID, fontPath: config.TUBAN_PDF_FONT, signal });
      let file = out;
      if (q.format === 'shp') {
        file = join(dir, 'export.zip');
        await zipFiles(r.files.map((f) => ({ path: f, name: basename(f) })), file);
      }
      signal.throwIfAborted();
      const type = { gpkg: 'application/geopackage+sqlite3', shp: 'application/zip', zip: 'application/zip', pdf: 'application/pdf', geojson: 'application/geo+json', kml: 'application/vnd.google-earth.kml+xml', csv: 'text/csv; charset=utf-8', xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet' }[q.format];
      return { file, type, cleanup, name: safeName(`patches-${q.month}${q.town ? `-${q.town}` : ''}.${ext}`) };
    } catch (err) {
      cleanup();
      throw err;
    }
  }

  app.get('/api/reports/monthly', async (req) => monthlyTownReport(db, me(req), parse(MonthQuery, req.query, 'query').month));
  app.get('/api/reports/board', async (req) => {
    requireRole(req, 'supervisor', 'analyst', 'town');
    return supervisorBoard(db, env, me(req), parse(BoardQuery, req.query, 'query').days);
  });

  app.get('/api/reports/trend', async (req) => {
    const q = parse(TrendQuery, req.query, 'query');
    return patchTrend(db, me(req), q.month, q.months);
  });

  app.get('/api/batches', async (req) => {
    requireRole(req, 'analyst', 'supervisor', 'admin');
    return recentBatches(db, 20);
  });
  app.get('/api/batches/:id', async (req) => {
    requireRole(req, 'analyst', 'supervisor', 'admin');
    const id = idParam((req.params as { id: string }).id, 'batch id');
    const p = await progress.read(id);
    // the server's folders are nobody's business over HTTP: scenes by file name, messages without the folder
    return { ...p, tiles: p.tiles.map((t) => ({ ...t, path: basename(t.path), error_message: t.error_message?.replaceAll(`${dirname(t.path)}/`, '') ?? null })) };
  });

  app.get('/api/users', async (req) => {
    requireRole(req, 'admin');
    return listUsers(db);
  });
  app.post('/api/users', async (req, reply) => {
    requireRole(req, 'admin');
    const b = parse(UserBody, req.body, 'user');
    return reply.status(201).send(await audited(req, 201, (trx) => createUser(trx, { username: b.username, displayName: b.display_name, role: b.role, townCode: b.town_code, password: b.password })));
  });
  app.post('/api/users/:username/tokens', async (req, reply) => {
    requireRole(req, 'admin');
    const r = await audited(req, 201, (trx) => issueToken(trx, (req.params as { username: string }).username, 'issued by admin', config.TUBAN_TOKEN_DAYS));
    return reply.status(201).send({ token: r.token, user: r.user, expires_at: r.expiresAt });
  });
  // an admin ends a user's sessions, locks them out or lets them back, or sets their password (which ends their sessions)
  app.post('/api/users/:username/revoke', async (req) => {
    requireRole(req, 'admin');
    return { revoked: await audited(req, 200, (trx) => revokeTokens(trx, (req.params as { username: string }).username)) };
  });
  for (const [path, disabled] of [['disable', true], ['enable', false]] as const) {
    app.post(`/api/users/:username/${path}`, async (req) => {
      requireRole(req, 'admin');
      const username = (req.params as { username: string }).username;
      if (disabled && username === me(req).username) throw new BadInputError('bad_request', 'an admin cannot disable themself; ask another admin', { field: 'username' });
      const r = await audited(req, 200, (trx) => setDisabled(trx, username, disabled));
      return { user: r.user, disabled, revoked: r.revoked };
    });
  }
  app.post('/api/users/:username/password', { bodyLimit: LOGIN_BODY_LIMIT }, async (req) => {
    requireRole(req, 'admin');
    const b = parse(PasswordBody, req.body, 'password');
    const r = await audited(req, 200, (trx) => setPassword(trx, (req.params as { username: string }).username, b.password));
    return { user: r.user, revoked: r.revoked };
  });
  return app;
}
