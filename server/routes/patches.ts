import { z } from 'zod';
import { DEFAULT_EVIDENCE_RULES } from '../../workflow/env.ts';
import { localeOf } from '../../i18n/say.ts';
import { applyBulk, BULK_ACTIONS, BULK_MAX, BulkSelection } from '../../store/bulk.ts';
import { addNote, applyAction, listPatchesFor, patchDetail } from '../../store/workflow.ts';
import { errorWords } from '../refusals.ts';
import { ActionBodies, NoteBody, PatchQuerySchema, ReportBody } from '../../workflow/actions.schema.ts';
import { reportPatch } from '../../store/report.ts';
import { ACTIONS, RULES } from '../../workflow/lifecycle.ts';
import { answers, errors, ok, PatchCodeParams, type RouteContext, type ZodApp } from '../context.ts';
import { MetaBody, PatchDetailBody, PatchListBody } from '../../api/responses.ts';
import { cityTime } from '../../core/time.ts';
import { dueFlags, isProvisional, workingDaysLeft } from '../../workflow/calendar.ts';
import { jsonSchema } from '../openapi.ts';

/**
 * Patches: the list, one patch, its actions and notes. Action and note bodies are declared here for
 * OpenAPI but checked by the workflow after the scope check (`attachValidation`): a patch outside the
 * user's town is a 404 whatever the body says, and a role that may never act is a 403 before any body check.
 */
export function patchRoutes(app: ZodApp, ctx: RouteContext): void {
  const { db, env, me } = ctx;
  const offsetH = ctx.config.TUBAN_UTC_OFFSET_H;
  /** The patch with its history and evidence times in the city's local time. */
  /** The deadline now running, with working days left, as the to-do counts them. */
  const running = (p: PatchDetailBody): PatchDetailBody['deadline'] => {
    const kind = p.status === 'dispatched' ? 'verification' : p.status === 'rectifying' ? 'rectification' : null;
    const due = kind === 'verification' ? p.verify_due : kind === 'rectification' ? p.rectify_due : null;
    if (!kind || !due) return null;
    return {
      kind,
      due,
      days_left: workingDaysLeft(env.calendar, env.today(), due),
      provisional: isProvisional(env.calendar, due),
    };
  };
  const local = (p: PatchDetailBody): PatchDetailBody => ({
    ...p,
    ...dueFlags(env.calendar, p),
    deadline: running(p),
    history: p.history.map((h) => ({ ...h, at: cityTime(h.at, offsetH) ?? '' })),
    evidence: p.evidence.map((e) => ({ ...e, uploaded_at: cityTime(e.uploaded_at, offsetH) ?? '' })),
  });
  app.get(
    '/api/patches',
    {
      schema: {
        summary: 'Patches, filtered and paged; town users see only their town',
        tags: ['patches'],
        querystring: PatchQuerySchema,
        response: { ...answers(PatchListBody, 'total and one page of patches'), ...errors(400, 401) },
      },
    },
    async (req) => {
      const r = await listPatchesFor(db, me(req), req.query);
      return { ...r, patches: r.patches.map((p) => ({ ...p, ...dueFlags(env.calendar, p) })) };
    },
  );

  const meta = {
    actions: Object.fromEntries(
      ACTIONS.map((name) => [
        name,
        {
          label: RULES[name].label,
          from: RULES[name].from,
          roles: RULES[name].roles,
          schema: jsonSchema(ActionBodies[name]),
        },
      ]),
    ),
  };
  app.get(
    '/api/meta',
    {
      schema: {
        summary:
          'The patch actions: label, states they start from, roles, body schema (the web app builds its forms from it)',
        tags: ['patches'],
        response: { ...answers(MetaBody, 'actions by name'), ...errors(401) },
      },
    },
    async () => ({
      ...meta,
      evidence_max_bytes: ctx.maxEvidenceBytes,
      evidence_min_photos: {
        verify: (ctx.env.evidence ?? DEFAULT_EVIDENCE_RULES).minVerifyPhotos,
        rectify: (ctx.env.evidence ?? DEFAULT_EVIDENCE_RULES).minRectifyPhotos,
      },
    }),
  );

  app.get(
    '/api/patches/:code',
    {
      schema: {
        summary: 'One patch with history, observations across months, evidence and allowed actions',
        tags: ['patches'],
        params: PatchCodeParams,
        response: { ...answers(PatchDetailBody, 'the patch'), ...errors(401, 404) },
      },
    },
    async (req) => local(await patchDetail(db, me(req), req.params.code)),
  );

  for (const action of ACTIONS) {
    const rule = RULES[action];
    app.post(
      `/api/patches/:code/actions/${action}`,
      {
        // a split's drawn parts are the largest body an action takes
        bodyLimit: action === 'split' ? 1024 * 1024 : 16 * 1024,
        attachValidation: true,
        schema: {
          summary: `${rule.label} — from ${rule.from.join('/')}; roles ${rule.roles.join('/')}`,
          tags: ['actions'],
          params: PatchCodeParams,
          body: ActionBodies[action],
          response: { ...answers(PatchDetailBody, 'the patch after the action'), ...errors(400, 401, 403, 404, 409) },
        },
      },
      async (req) =>
        local(await ctx.audited(req, 200, (trx) => applyAction(trx, env, me(req), req.params.code, action, req.body))),
    );
  }

  app.post(
    '/api/patches',
    {
      bodyLimit: 1024 * 1024,
      attachValidation: true,
      schema: {
        summary:
          "Report a patch the imagery did not give (巡查发现, 群众举报), drawn on a month's imagery; towns (their own town: dispatched to them at once) and analysts (waits to be dispatched)",
        tags: ['patches'],
        body: ReportBody,
        response: {
          201: PatchDetailBody.describe('the reported patch'),
          200: PatchDetailBody.describe('this request key had reported it before: the same patch, nothing new made'),
          ...errors(400, 401, 403, 409),
        },
      },
    },
    async (req, reply) => {
      const user = me(req);
      const rules = { touchM: ctx.config.TUBAN_BUILDING_TOUCH_M, onBuildingShare: ctx.config.TUBAN_ON_BUILDING_SHARE };
      // a repeat of a request key answers (and is audited as) 200 with the patch it made, a new report 201
      const status = (r: { repeated: boolean }) => (r.repeated ? 200 : 201);
      const made = await ctx.audited<Awaited<ReturnType<typeof reportPatch>>>(
        req,
        status,
        (trx) => reportPatch(trx, env, rules, user, req.body),
        (r) => ({ patch: r.code, repeated: r.repeated }),
      );
      return reply.status(status(made)).send(local(await patchDetail(db, user, made.code)));
    },
  );

  app.post(
    '/api/patches/:code/notes',
    {
      bodyLimit: 16 * 1024,
      attachValidation: true,
      schema: {
        summary: 'Add a note to a patch (no state change)',
        tags: ['patches'],
        params: PatchCodeParams,
        body: NoteBody,
        response: {
          201: PatchDetailBody.describe('the patch with the note in its history'),
          ...errors(400, 401, 403, 404),
        },
      },
    },
    async (req, reply) =>
      reply
        .status(201)
        .send(
          local(
            await ctx.audited(req, 201, (trx) =>
              addNote(trx, me(req), req.params.code, (req.body as { text?: unknown } | undefined)?.text),
            ),
          ),
        ),
  );
}

const BulkRequest = z.object({
  select: BulkSelection,
  body: z
    .record(z.string(), z.unknown())
    .optional()
    .describe("the action's body, as for one patch (a dismiss's reason, an extension's working days and reason)"),
  dry_run: z.boolean().optional().describe('judge every patch and move none'),
});

/**
 * Bulk moves: one action on many patches (codes, or a filter), each judged on its own — moved, or
 * refused with the reason in the reader's language — one history event per patch, and one audit row
 * that names them all.
 */
export function bulkRoutes(app: ZodApp, ctx: RouteContext): void {
  const { env, me } = ctx;
  app.post(
    '/api/patches/actions/:action',
    {
      bodyLimit: 512 * 1024,
      schema: {
        summary: `One action on many patches — ${BULK_ACTIONS.join(', ')} — by codes or a filter (a month at least; at most ${BULK_MAX}), each judged on its own`,
        tags: ['actions'],
        params: z.object({ action: z.enum(BULK_ACTIONS) }),
        body: BulkRequest,
        response: { ...ok('each patch: moved, or refused with the reason'), ...errors(400, 401, 403) },
      },
    },
    async (req) => {
      const locale = localeOf(req.headers['accept-language']);
      const { action } = req.params;
      const r = await ctx.audited(
        req,
        200,
        (trx) =>
          applyBulk(trx, env, me(req), action, req.body.body ?? {}, req.body.select, { dryRun: req.body.dry_run }),
        (x) => ({
          bulk: {
            action,
            dry_run: x.dry_run,
            moved: x.outcomes.filter((o) => o.moved).map((o) => o.code),
            refused: x.outcomes
              .filter((o) => !o.moved)
              .map((o) => ({ code: o.code, error: o.error?.code ?? o.error?.kind })),
          },
        }),
      );
      const results = r.outcomes.map((o) => ({
        code: o.code,
        moved: o.moved,
        from: o.from ?? null,
        to: o.to ?? null,
        ...(o.error
          ? { error: { kind: o.error.kind, code: o.error.code ?? null, message: errorWords(o.error.err, locale) } }
          : {}),
      }));
      return {
        action,
        dry_run: r.dry_run,
        matched: r.matched,
        moved: results.filter((x) => x.moved).length,
        refused: results.filter((x) => !x.moved).length,
        results,
      };
    },
  );
}
