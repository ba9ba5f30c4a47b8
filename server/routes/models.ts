import { z } from 'zod';
import { ModelItem, ModelPromotionBody, ModelRollbackBody, ModelsBody } from '../../api/responses.ts';
import { ConflictError } from '../../core/errors.ts';
import { getModel, recordModelEvent, type ModelRow } from '../../store/models.ts';
import { promoteModel } from '../../training/evaluate.ts';
import { listModelsNow, rollbackModel, trainingProgress } from '../../training/models.ts';
import { answers, errors, RowId, type RouteContext, type ZodApp } from '../context.ts';

const tags = ['models'];
const item = (m: ModelRow): z.output<typeof ModelItem> => ({
  id: Number(m.id),
  name: m.name,
  version: m.version,
  status: m.status,
  parent_id: m.parent_id === null ? null : Number(m.parent_id),
  trained_on: m.trained_on as Record<string, unknown> | null,
  evaluation: m.evaluation,
  progress: trainingProgress(m),
  created_at: m.created_at,
  promoted_at: m.promoted_at,
});

/**
 * The change models for admins (supervisors may read): the register, a promotion by the rule, a rollback.
 * Training and evaluation run for minutes to hours on the machine that holds the imagery: `tuban model`.
 */
export function modelRoutes(app: ZodApp, ctx: RouteContext): void {
  const { db, config, me } = ctx;
  app.get(
    '/api/models',
    {
      preValidation: ctx.roles('admin', 'supervisor'),
      schema: {
        summary: 'Every change model in the register: state, training, last evaluation (admin, supervisor)',
        tags,
        response: { ...answers(ModelsBody, 'the models, oldest first'), ...errors(401, 403) },
      },
    },
    async (req) => (await listModelsNow({ db, config, actor: me(req).username })).map(item),
  );
  app.post(
    '/api/models/:id/promote',
    {
      preValidation: ctx.roles('admin'),
      schema: {
        summary:
          'Let a candidate run new batches: only when its held-out month improves and no shared validation set falls by more than 0.01 pixel F1 (admin)',
        tags,
        params: z.object({ id: RowId('model id') }),
        response: {
          ...answers(ModelPromotionBody, 'the promotion and its figures'),
          ...errors(400, 401, 403, 404, 409),
        },
      },
    },
    async (req) => {
      const actor = me(req).username;
      let r: Awaited<ReturnType<typeof promoteModel>>;
      try {
        r = await ctx.audited(req, 200, (trx) => promoteModel({ db: trx, config, actor }, req.params.id));
      } catch (err) {
        // the refusal's event went with the rolled-back transaction: kept on its own, with its figures
        const reasons = err instanceof ConflictError ? (err.detail.reasons as string[] | undefined) : undefined;
        if (reasons) await recordModelEvent(db, req.params.id, 'refused', actor, { reasons, via: 'api' });
        throw err;
      }
      return { running: item(r.promoted), replaced: item(r.replaced), reasons: r.verdict.reasons };
    },
  );
  app.post(
    '/api/models/rollback',
    {
      preValidation: ctx.roles('admin'),
      schema: {
        summary: 'Put back the model the running one replaced (admin)',
        tags,
        body: z.object({ reason: z.string().max(500).optional().describe('why, for the history') }).optional(),
        response: {
          ...answers(ModelRollbackBody, 'the model running again and the one set aside'),
          ...errors(400, 401, 403, 404, 409),
        },
      },
    },
    async (req) => {
      const r = await ctx.audited(req, 200, (trx) =>
        rollbackModel({ db: trx, config, actor: me(req).username }, req.body?.reason),
      );
      return { running: item(await getModel(db, r.to.id)), set_aside: item(await getModel(db, r.from.id)) };
    },
  );
}
