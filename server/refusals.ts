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
import { byteSize, label, type Group, type Locale } from '../i18n/index.ts';
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

/** The catalogue group whose words name a field's codes (a choice offered as 违法/合法, not illegal/legal). */
const CHOICE_GROUPS: Record<string, Group> = {
  result: 'result',
  measure: 'measure',
  violation: 'violation',
  reason: 'dismiss_reason',
  status: 'status',
  class: 'class',
  relation: 'relation',
  role: 'role',
  stage: 'stage',
};
const TYPE_WORDS: Record<string, MessageKey> = {
  string: 'zod_kind_text',
  number: 'zod_kind_number',
  int: 'zod_kind_integer',
  boolean: 'zod_kind_yes_no',
  array: 'zod_kind_list',
  object: 'zod_kind_fields',
};

/**
 * zod's default messages for the common problems, said as a clerk reads them: what is wrong with the
 * field and what to put there ("必须填写", "最多 200 个字", "请从 违法、合法 中选择"), not zod's
 * "无效输入：期望 string，实际接收 undefined". Undefined: no plain words for it (zod's own are used).
 */
function plainWords(issue: Record<string, unknown>, field: unknown, locale: Locale): string | undefined {
  const n = (v: unknown) => Number(v);
  switch (issue.code) {
    case 'invalid_type': {
      if (/received undefined/.test(String(issue.message))) return render(say('zod_required'), locale);
      const kind = TYPE_WORDS[String(issue.expected)];
      return kind ? render(say('zod_type', { kind: render(say(kind), locale) }), locale) : undefined;
    }
    case 'too_small':
    case 'too_big': {
      const small = issue.code === 'too_small';
      const limit = n(small ? issue.minimum : issue.maximum);
      const inclusive = issue.inclusive !== false;
      if (issue.origin === 'string')
        return small && limit === 1
          ? render(say('zod_text_empty'), locale)
          : render(say(small ? 'zod_text_min' : 'zod_text_max', { n: limit }), locale);
      if (issue.origin === 'array' || issue.origin === 'set')
        return render(say(small ? 'zod_list_min' : 'zod_list_max', { n: limit }), locale);
      if (issue.origin === 'number' || issue.origin === 'int' || issue.origin === 'bigint')
        return render(
          say(
            small
              ? inclusive
                ? 'zod_number_min'
                : 'zod_number_above'
              : inclusive
                ? 'zod_number_max'
                : 'zod_number_below',
            {
              n: limit,
            },
          ),
          locale,
        );
      return undefined;
    }
    case 'invalid_union':
    case 'invalid_value': {
      // a choice (an enum, or the field that picks the form: 核查结果)
      const values = Array.isArray(issue.values)
        ? issue.values.map(String)
        : Array.isArray(issue.options)
          ? issue.options.map(String)
          : [];
      if (!values.length) return undefined;
      const group = typeof field === 'string' ? CHOICE_GROUPS[field] : undefined;
      const sep = locale === 'en' ? ', ' : '、';
      const choices = values.map((v) => (group ? `${label(group, v, locale)}` : v)).join(sep);
      return render(say('zod_choice', { choices }), locale);
    }
    case 'invalid_format':
      if (issue.format === 'date') return render(say('zod_date'), locale);
      if (issue.format === 'datetime') return render(say('zod_datetime'), locale);
      if (issue.format === 'url') return render(say('zod_url'), locale);
      return render(say('zod_format'), locale);
    case 'unrecognized_keys': {
      const keys = Array.isArray(issue.keys) ? issue.keys.map(String).join(locale === 'en' ? ', ' : '、') : '';
      return render(say('zod_unknown_keys', { keys }), locale);
    }
    default:
      return undefined;
  }
}

/** One issue in `locale`: our own texts through the catalogue, zod's defaults in plain words (or zod's locale), others as written. */
function issueWords(i: RawIssue, locale: Locale, field?: unknown): string {
  const params = i.params ?? {};
  if (isSaid(params.say)) return render(params.say, locale);
  const message = i.message ?? 'invalid';
  const key = keyOfEnglish(message);
  if (key) return render(say(key), locale);
  const issue = { ...params, ...i, code: i.code ?? i.keyword, params: undefined };
  // a zod default message (not one a schema set) is said again in the reader's language: in plain words
  // for a person (zh-CN), as zod says it for an API client reading English
  // (zod's default for a wrong type names what it received, which the issue does not carry)
  const zodDefault =
    zodWords('en', issue) === message ||
    (issue.code === 'invalid_type' && /^Invalid input: expected \w+, received \w+$/.test(message));
  if (zodDefault)
    return (locale === 'en' ? undefined : plainWords(issue, field, locale)) ?? zodWords(locale, issue) ?? message;
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
      return `${named.join('.') || root}${locale === 'en' ? ': ' : '：'}${issueWords(i, locale, path.at(-1))}`;
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
    // the client went away (its request's signal aborted the work): nobody reads an answer; noted, not an error
    if (err.name === 'AbortError' && req.signal?.aborted) {
      opts.log.info('Http:ClientGone', { requestId: req.id, method: req.method, path: req.url.slice(0, 500) });
      return reply.status(499).send({ error: 'transient', message: render(say('client_gone'), locale) });
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
