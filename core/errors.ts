/**
 * The few error kinds tuban distinguishes. The kind decides a job's fate (retry or not) and,
 * later, an HTTP status — in one table, `errorFate`, instead of scattered `instanceof` checks.
 */
import { render, type Said } from '../i18n/say.ts';

export type ErrorKind =
  | 'bad_input'
  | 'transient'
  | 'not_found'
  | 'conflict'
  | 'forbidden'
  | 'unauthorized'
  | 'too_many';

/**
 * What an error says: plain English for the operator (CLI, logs), or a catalogue message (`say(key,
 * values)`) that the server puts into the reader's language; `message` is then its English words.
 */
export type ErrorText = string | Said;

export class TubanError extends Error {
  readonly kind: ErrorKind;
  /** Values that explain the failure: file, window, CRS, expected vs found. */
  readonly detail: Record<string, unknown>;
  /** The catalogue message, when the error was made from one (every refusal a web user can meet). */
  readonly said?: Said;
  constructor(kind: ErrorKind, text: ErrorText, detail: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(typeof text === 'string' ? text : render(text, 'en'), options);
    this.kind = kind;
    this.detail = detail;
    if (typeof text !== 'string') this.said = text;
    this.name = new.target.name;
  }
}

/** Input that will never work as given: a corrupt tile, a missing CRS, an invalid geometry. Not retried. */
export class BadInputError extends TubanError {
  /** Stable machine name for the reason, e.g. `no_georeferencing`, `unknown_crs`, `corrupt_tiff`. */
  readonly code: string;
  constructor(code: string, message: ErrorText, detail: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super('bad_input', message, detail, options);
    this.code = code;
  }
}

/** A failure that may pass: a lost connection, a busy server. Retried with backoff. */
export class TransientError extends TubanError {
  constructor(message: ErrorText, detail: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super('transient', message, detail, options);
  }
}

export class NotFoundError extends TubanError {
  constructor(message: ErrorText, detail: Record<string, unknown> = {}) {
    super('not_found', message, detail);
  }
}

export class ConflictError extends TubanError {
  constructor(message: ErrorText, detail: Record<string, unknown> = {}) {
    super('conflict', message, detail);
  }
}

export class ForbiddenError extends TubanError {
  constructor(message: ErrorText, detail: Record<string, unknown> = {}) {
    super('forbidden', message, detail);
  }
}

/** Too many attempts from one user or address (logins): wait `retryAfterS` seconds. */
export class TooManyError extends TubanError {
  constructor(message: ErrorText, retryAfterS: number) {
    super('too_many', message, { retryAfterS });
  }
}

export class UnauthorizedError extends TubanError {
  constructor(message: ErrorText, detail: Record<string, unknown> = {}) {
    super('unauthorized', message, detail);
  }
}

/**
 * One table: error kind → whether a job retries it, which HTTP status it maps to, and the CLI's
 * exit code (README: 0 ok, 2 bad input, 3 a service did not answer, 1 anything else).
 */
export const errorFate: Record<ErrorKind, { retry: boolean; httpStatus: number; exitCode: number }> = {
  bad_input: { retry: false, httpStatus: 400, exitCode: 2 },
  transient: { retry: true, httpStatus: 503, exitCode: 3 },
  not_found: { retry: false, httpStatus: 404, exitCode: 2 },
  conflict: { retry: false, httpStatus: 409, exitCode: 2 },
  forbidden: { retry: false, httpStatus: 403, exitCode: 2 },
  unauthorized: { retry: false, httpStatus: 401, exitCode: 2 },
  too_many: { retry: true, httpStatus: 429, exitCode: 3 },
};

/** Kind of any thrown value; unknown errors are treated as transient (retried, then reported). */
export function errorKindOf(err: unknown): ErrorKind {
  return err instanceof TubanError ? err.kind : 'transient';
}

/** Short reason code for summaries: the BadInputError code, a code its detail names (`unreachable`), or the error kind. */
export function errorCodeOf(err: unknown): string {
  if (err instanceof BadInputError) return err.code;
  if (err instanceof TubanError) return typeof err.detail.code === 'string' ? err.detail.code : err.kind;
  return 'error';
}
