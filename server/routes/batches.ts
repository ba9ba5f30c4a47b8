import { basename, dirname } from 'node:path';
import { z } from 'zod';
import { recentBatches } from '../../workers/batch.progress.ts';
import { answers, errors, RowId, type RouteContext, type ZodApp } from '../context.ts';
import { BatchListBody, BatchProgressBody } from '../../api/responses.ts';

/** The monthly batches: the recent ones, and one with its scenes, parts and live progress. */
export function batchRoutes(app: ZodApp, ctx: RouteContext): void {
  const preValidation = ctx.roles('analyst', 'supervisor', 'admin');
  app.get(
    '/api/batches',
    {
      preValidation,
      schema: {
        summary: 'The 20 most recent batches (analyst, supervisor, admin)',
        tags: ['batches'],
        response: { ...answers(BatchListBody, 'batches, newest first'), ...errors(401, 403) },
      },
    },
    async () => {
      return recentBatches(ctx.db, ctx.config.TUBAN_UTC_OFFSET_H, 20);
    },
  );
  app.get(
    '/api/batches/:id',
    {
      preValidation,
      schema: {
        summary: 'One batch: scenes by file name, parts, progress (analyst, supervisor, admin)',
        tags: ['batches'],
        params: z.object({ id: RowId('batch id') }),
        response: { ...answers(BatchProgressBody, 'the batch and its progress'), ...errors(400, 401, 403, 404) },
      },
    },
    async (req) => {
      const p = await ctx.progress.read(req.params.id);
      // the server's folders are nobody's business over HTTP: scenes by file name, messages without the folder
      return {
        ...p,
        tiles: p.tiles.map((t) => ({
          ...t,
          path: basename(t.path),
          error_message: t.error_message?.replaceAll(`${dirname(t.path)}/`, '') ?? null,
        })),
      };
    },
  );
}
