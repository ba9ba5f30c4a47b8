import { en, addSaidIssue, say } from '../i18n/say.ts';
import type { ChipPool } from '../export/chip.pool.ts';
import type {
  FastifyBaseLogger,
  FastifyInstance,
  FastifyRequest,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Config } from '../config/env.ts';
import type { GeoTiffCache } from '../pipeline/io/geotiff.source.ts';
import type { Logger } from '../core/log.ts';
import type { Db } from '../store/db.ts';
import type { User } from '../store/users.ts';
import type { WorkflowEnv } from '../workflow/env.ts';
import type { BatchProgressReader } from '../workers/batch.progress.ts';
import type { WorkGate } from './gate.ts';
import { MONTH_PATTERN } from '../core/month.ts';
import { ErrorBody } from '../api/responses.ts';

/** The Fastify instance the routes are declared on: request parts typed from their zod schemas. */
export type ZodApp = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  ZodTypeProvider
>;

/** What every route module gets from buildServer. */
export interface RouteContext {
  db: Db;
  config: Config;
  env: WorkflowEnv;
  log: Logger;
  /** Open GeoTIFFs of imagery, shared by map tiles and chips. */
  sources: GeoTiffCache;
  progress: BatchProgressReader;
  /** PDF sheets and town packages: a few at a time, a short line, the rest refused. */
  heavyExports: WorkGate;
  /** Patch chips and photo thumbnails: a few drawn at once, a line, the rest refused (503 with Retry-After). */
  images: WorkGate;
  /** The threads chips are drawn in, off the event loop. */
  chips: ChipPool;
  maxEvidenceBytes: number;
  /** The Chinese font photos are stamped in (TUBAN_PDF_FONT or the first installed); null: no stamped copies. */
  stampFont: string | null;
  /** The signed-in user (the auth hook has set it on every route that needs a token). */
  me: (req: FastifyRequest) => User;
  /** A route's preValidation hook: 403 unless the signed-in user has one of these roles (checked before the body). */
  roles: (...roles: User['role'][]) => (req: FastifyRequest) => Promise<void>;
  /** Runs a change and writes its audit row in one transaction: both are kept or neither. */
  audited: <T>(
    req: FastifyRequest,
    /** The answer's status, or how to tell it from what the work returned (a repeat answers 200, not 201). */
    status: number | ((result: NoInfer<T>) => number),
    work: (trx: Db) => Promise<T>,
    /** What the audit row says besides the body, from what the work returned (a bulk move names every patch). */
    detail?: (result: T) => Record<string, unknown>,
  ) => Promise<T>;
}

export const MonthString = z.string().regex(MONTH_PATTERN, en('form_month'));
const Username = z.string().min(1).max(64).describe('user name');
export const UsernameParams = z.object({ username: Username });
export const PatchCodeParams = z.object({
  code: z.string().min(1).max(64).describe('patch code, e.g. 350206-202403-0001'),
});

/** A row id in a path: digits only, within what a bigint column holds; `what` names it in the error. */
export const RowId = (what: string) =>
  z
    .string()
    .superRefine((v, ctx) => {
      if (!/^\d{1,15}$/.test(v)) addSaidIssue(ctx, say('form_whole_number', { what }));
    })
    .transform(Number)
    .describe(what);

/** A route's answer when it succeeds, described for OpenAPI (its shape is the store function's return type). */
export const ok = (what: string, status: 200 | 201 | 204 | 304 = 200) =>
  ({ [status]: z.unknown().describe(what) }) as Record<typeof status, z.ZodUnknown>;

/** A route's answer when it succeeds, with its shape (api/responses.ts): checked before it is sent, shown in OpenAPI. */
export const answers = <S extends z.ZodType>(schema: S, what: string) => ({ 200: schema.describe(what) });

/** The error answers a route can give, for OpenAPI. */
export const errors = (...statuses: (400 | 401 | 403 | 404 | 409 | 413 | 429 | 503)[]) => {
  const what: Record<number, string> = {
    400: 'bad input: the message names the field',
    401: 'no valid token',
    403: 'your role may not do this',
    404: 'not found in your scope',
    409: 'not allowed from the current state; the message lists the allowed moves',
    413: 'the body is too large',
    429: 'too many tries; see Retry-After',
    503: 'busy or timed out; see Retry-After',
  };
  return Object.fromEntries(statuses.map((s) => [s, ErrorBody.describe(what[s])]));
};
