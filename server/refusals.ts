/**
 * Errors as answers, in the language the request asks for (Accept-Language; zh-CN when it names
 * none tuban speaks). A TubanError made from a catalogue message is put into words here; request
 * validation names each field in the catalogue's words and zod's own messages in that language.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorFate, TubanError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { byteSize, label, type Locale } from '../i18n/index.ts';
import { isSaid, keyOfEnglish, localeOf, render, say, type MessageKey, type Said } from '../i18n/say.ts';

/** A validation problem, from zod directly or as Fastify hands zod's issues on. */
interface RawIssue {
  code?: string;
  keyword?: string;
  path?: readonly PropertyKey[];
  instancePath?: string;
  message?: string;
  params?: Record<string, unknown>;
  [more: string]: unknown;
}

const ZOD_LOCALES: Record<Locale, ReturnType<typeof z.locales.en>> = {
  'zh-CN': z.locales.zhCN(),
  en: z.locales.en(),
};

function zodWords(locale: Locale, issue: Record<string, unknown>): string | undefined {
  const r = ZOD_LOCALES[locale].localeError(issue as never);
  return typeof r === 'string' ? r : r?.message;
}

/** One issue in `locale`: our own texts through the catalogue, zod's defaults through zod's locale, others as written. */
function issueWords(i: RawIssue, locale: Locale): string {
  const params = i.params ?? {};
  if (isSaid(params.say)) return render(params.say, locale);
  const message = i.message ?? 'invalid';
  const key = keyOfEnglish(message);
  if (key) return render(say(key), locale);
  const issue = { ...params, ...i, code: i.code ?? i.keyword, params: undefined };
  // a zod default message (not one a schema set) is said again in the reader's language
  if (zodWords('en', issue) === message) return zodWords(locale, issue) ?? message;
  return message;
}

/** "due: …; parts.0.coordinates.0: …": each field named in the catalogue's words where it has them. */
export function issuesInWords(issues: readonly RawIssue[], locale: Locale, root: string): string {
  const sep = locale === 'en' ? '; ' : '；';
  return issues
    .map((i) => {
      const path = i.path ?? (i.instancePath ?? '').split('/').slice(1);
      // English readers are API clients too: they get the field names as the API spells them
      const named = path.map((p, n) =>
        n === 0 && typeof p === 'string' && locale !== 'en' ? label('field', p, locale) : String(p),
      );
      return `${named.join('.') || root}${locale === 'en' ? ': ' : '：'}${issueWords(i, locale)}`;
    })
    .join(sep);
}

/** The words of a TubanError in `locale`; issues it carries (a bad action body) are said in it too. */
export function errorWords(err: TubanError, locale: Locale): string {
  if (!err.said) return err.message;
  const issues = err.detail.issues;
  if (Array.isArray(issues) && 'issues' in err.said.params)
    return render({ ...err.said, params: { ...err.said.params, issues: issuesInWords(issues, locale, '') } }, locale);
  return render(err.said, locale);
}

const PARTS: Record<string, MessageKey> = { body: 'part_body', querystring: 'part_query', params: 'part_path' };
/** Fastify's own refusals that a client can meet, by error code. */
const FASTIFY_CODES: Record<string, (err: Error & { statusCode?: number }, req: FastifyRequest) => Said> = {
  FST_ERR_CTP_BODY_TOO_LARGE: (_e, req) => {
    // the route's own limit, said as a size: a photo's upload says so as a photo
    const max = byteSize(
      Math.max(0, (req.routeOptions.bodyLimit ?? 0) - (req.routeOptions.url?.endsWith('/evidence') ? 1 : 0)),
    );
    return req.routeOptions.url?.endsWith('/evidence')
      ? say('photo_too_large', { max })
      : say('request_too_large', { max });
  },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: (_e, req) => say('media_type', { type: String(req.headers['content-type'] ?? '') }),
};

export interface RefusalOptions {
  log: Logger;
  /** The handler time limit of a route that sets none, seconds. */
  defaultTimeoutS: number;
}

/** Fastify's error handler: the status from the error's kind, the message in the reader's language. */
export function refusals(opts: RefusalOptions) {
  return (err: Error & { statusCode?: number; code?: string }, req: FastifyRequest, reply: FastifyReply) => {
    const locale = localeOf(req.headers['accept-language']);
    // refused before its body was read (no token, too large, timed out): the socket is closed after the
    // answer, so a client trickling a body does not keep it open
    const status = err instanceof TubanError ? errorFate[err.kind].httpStatus : (err.statusCode ?? 500);
    if ([401, 413, 503].includes(status) || err.code === 'FST_ERR_HANDLER_TIMEOUT') reply.header('connection', 'close');
    if (err instanceof TubanError) {
      const status = errorFate[err.kind].httpStatus;
      if (typeof err.detail.retryAfterS === 'number') reply.header('retry-after', String(err.detail.retryAfterS));
      return reply.status(status).send({
        error: err.kind,
        code: 'code' in err ? (err.code as string) : err.kind,
        message: errorWords(err, locale),
        ...(err.detail.allowed ? { allowed: err.detail.allowed as string[] } : {}),
      });
    }
    if (hasZodFastifySchemaValidationErrors(err)) {
      // 400 naming each field: "query: offset: Too big…", "body: parts.0.coordinates.0: a ring ends where it starts"
      const context = err.validationContext ?? '';
      const part = PARTS[context] ? render(say(PARTS[context]), locale) : context || 'request';
      const issues = err.validation as unknown as RawIssue[];
      const message = render(say('request_invalid', { part, issues: issuesInWords(issues, locale, part) }), locale);
      return reply.status(400).send({ error: 'bad_input', code: 'bad_request', message });
    }
    if (err.statusCode && err.statusCode < 500) {
      const words = FASTIFY_CODES[err.code ?? ''];
      return reply
        .status(err.statusCode)
        .send({ error: 'bad_input', message: words ? render(words(err, req), locale) : err.message });
    }
    if (err.code === 'FST_ERR_HANDLER_TIMEOUT') {
      const limitS = Math.round((req.routeOptions.handlerTimeout ?? opts.defaultTimeoutS * 1000) / 1000);
      opts.log.warn('Http:TimedOut', { requestId: req.id, method: req.method, path: req.url.slice(0, 500), limitS });
      return reply
        .status(503)
        .header('retry-after', '30')
        .send({
          error: 'transient',
          message: render(say('timed_out', { seconds: limitS }), locale),
          request_id: req.id,
        });
    }
    opts.log.error('Http:InternalError', {
      requestId: req.id,
      method: req.method,
      path: req.url.slice(0, 500),
      user: req.user?.username ?? null,
      error: err.message,
      stack: err.stack,
    });
    return reply.status(500).send({
      error: 'internal',
      message: render(say('internal', { request_id: req.id }), locale),
      request_id: req.id,
    });
  };
}
