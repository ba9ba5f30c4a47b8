/**
 * What each route answers, by method and path: the web client's `api(path)` and `post(path, body)`
 * give the answer these types name, so a page never states the type of a call itself. A path is
 * looked up without its query string; one not listed (files, images, answers without a schema)
 * answers `unknown`. The server declares the same schemas on its routes (server/routes/).
 * Types only: nothing here reaches the browser's bundle.
 */
import type { z } from 'zod';
import type {
  BatchListBody,
  BatchProgressBody,
  EvidenceUploadBody,
  HealthBody,
  MapConfigBody,
  MetaBody,
  ModelPromotionBody,
  ModelRollbackBody,
  ModelsBody,
  PatchDetailBody,
  PatchFeatureCollection,
  PatchListBody,
  RevokedBody,
  TokenBody,
  TownsBody,
  UserBody,
  UserChangeBody,
  UsersBody,
} from './responses.ts';
import type { BoardBody, MonthlyReportBody, TodoBody, TrendBody, YearlyReportBody } from './reports.ts';

type Out<S extends z.ZodType> = z.output<S>;

/** The path without its query string. */
type Route<P extends string> = P extends `${infer R}?${string}` ? R : P;

type GetAnswer<R extends string> = R extends '/api/health'
  ? HealthBody
  : R extends '/api/me'
    ? UserBody
    : R extends '/api/meta'
      ? MetaBody
      : R extends '/api/map/config'
        ? MapConfigBody
        : R extends '/api/map/towns'
          ? TownsBody
          : R extends '/api/map/patches'
            ? PatchFeatureCollection
            : R extends '/api/patches'
              ? PatchListBody
              : R extends `/api/patches/${string}/${string}`
                ? unknown
                : R extends `/api/patches/${string}`
                  ? PatchDetailBody
                  : R extends '/api/batches'
                    ? Out<typeof BatchListBody>
                    : R extends `/api/batches/${string}`
                      ? BatchProgressBody
                      : R extends '/api/users'
                        ? UsersBody
                        : R extends '/api/models'
                          ? ModelsBody
                          : R extends '/api/reports/monthly'
                            ? MonthlyReportBody
                            : R extends '/api/reports/yearly'
                              ? YearlyReportBody
                              : R extends '/api/reports/board'
                                ? BoardBody
                                : R extends '/api/reports/trend'
                                  ? TrendBody
                                  : R extends '/api/todo'
                                    ? TodoBody
                                    : unknown;

type PostAnswer<R extends string> = R extends '/api/login'
  ? TokenBody
  : R extends '/api/patches'
    ? PatchDetailBody
    : R extends `/api/patches/${string}/actions/${string}`
      ? PatchDetailBody
      : R extends `/api/patches/${string}/notes`
        ? PatchDetailBody
        : R extends `/api/patches/${string}/evidence`
          ? Out<typeof EvidenceUploadBody>
          : R extends '/api/users'
            ? UserBody
            : R extends `/api/users/${string}/tokens`
              ? TokenBody
              : R extends `/api/users/${string}/revoke`
                ? Out<typeof RevokedBody>
                : R extends `/api/users/${string}/${'password' | 'enable' | 'disable'}`
                  ? Out<typeof UserChangeBody>
                  : R extends '/api/models/rollback'
                    ? Out<typeof ModelRollbackBody>
                    : R extends `/api/models/${string}/promote`
                      ? Out<typeof ModelPromotionBody>
                      : unknown;

/** The answer to a GET of `P`. */
export type GetAnswerTo<P extends string> = GetAnswer<Route<P>>;
/** The answer to a POST to `P`. */
export type PostAnswerTo<P extends string> = PostAnswer<Route<P>>;
