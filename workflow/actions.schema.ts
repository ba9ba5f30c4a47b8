import { en, addSaidIssue, say } from '../i18n/say.ts';
import { z } from 'zod';
import { IsoDate } from './calendar.ts';
import { LOOKBACK_RESULTS } from '../pipeline/lookback.judge.ts';
import {
  BUILDING_RELATIONS,
  DISMISS_REASONS,
  FINAL_STATES,
  MEASURES,
  PATCH_SOURCES,
  PATCH_STATES,
  VERIFY_RESULTS,
  VIOLATIONS,
} from './lifecycle.ts';
import { MONTH_PATTERN } from '../core/month.ts';

/** A town (镇街) code as a request gives it: letters, digits, `_` and `-` only (no separators, no control characters). */
export const TownCode = z.string().regex(/^[\p{L}\p{N}_-]{1,64}$/u, en('form_town_code'));

/** Request bodies of the patch actions; the same schemas validate requests and describe them in OpenAPI. */
/** A client's own key for a request it may send again (an extension, an upload): the same key does the work once. */
export const RequestKey = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, en('form_request_key'));

/** A GeoJSON Polygon in lon/lat: closed rings of 4–10,000 positions, at most 100 rings. */
export const LonLatPolygon = z.object({
  type: z.literal('Polygon'),
  coordinates: z
    .array(
      z
        .array(z.tuple([z.number().min(-180).max(180), z.number().min(-90).max(90)]))
        .min(4)
        .max(10_000)
        // guarded: the refinement runs even when .min(4) failed, and an empty ring has no first position
        .refine(
          (ring) => ring.length >= 4 && ring[0][0] === ring.at(-1)![0] && ring[0][1] === ring.at(-1)![1],
          en('form_ring_closed'),
        ),
    )
    .min(1)
    .max(100),
});

export const ActionBodies = {
  dispatch: z.object({ note: z.string().max(2000).optional() }),
  dismiss: z.object({ reason: z.enum(DISMISS_REASONS), note: z.string().max(2000).optional() }),
  // which fields a result needs is part of the schema (one variant per result), so forms and OpenAPI show it
  verify: z.discriminatedUnion('result', [
    z.object({
      result: z.literal('illegal'),
      violation: z
        .enum(VIOLATIONS, { error: en('form_violation_needed') })
        .describe('违法建设 (construction) or 违法用地 (land_use)'),
      note: z.string().max(2000).optional(),
    }),
    z.object({
      result: z.literal('legal'),
      permit_ref: z
        .string({ error: en('form_permit_needed') })
        .min(1, en('form_permit_needed'))
        .max(200)
        .describe('permit number or document reference'),
      note: z.string().max(2000).optional(),
    }),
    z.object({
      result: z.enum(
        VERIFY_RESULTS.filter((r) => r !== 'illegal' && r !== 'legal') as ['false_change', 'pre_existing'],
      ),
      note: z.string().max(2000).optional(),
    }),
  ]),
  rectify: z.object({
    measure: z.enum(MEASURES),
    due: IsoDate.optional().describe(
      'an earlier deadline than the policy gives; default and latest: the class period in working days',
    ),
    note: z.string().max(2000).optional(),
  }),
  report_rectified: z.object({ note: z.string().max(2000).optional() }),
  close: z.object({
    reason: z
      .string()
      .min(1)
      .max(2000)
      .optional()
      .describe('needed when the latest imagery check (回头看) says the structure still stands; kept in the history'),
    note: z.string().max(2000).optional(),
  }),
  send_back: z.object({ reason: z.string().min(1).max(2000) }),
  correct_town: z.object({ town_code: z.string().min(1), reason: z.string().min(1).max(2000) }),
  merge: z.object({
    other: z.string().min(1).describe('code of the patch merged into this one'),
    reason: z.string().min(1).max(2000),
  }),
  split: z.object({
    parts: z
      .array(LonLatPolygon)
      .min(2)
      .max(20)
      .describe('two or more polygons in lon/lat; each part is the patch cut by one polygon'),
    reason: z.string().min(1).max(2000),
  }),
  extend: z.object({
    working_days: z.number().int().min(1).max(120),
    reason: z.string().min(1).max(2000),
    request_key: RequestKey.describe(
      'a key of your own for this request (e.g. a UUID): sent again, the same key extends nothing more',
    ),
  }),
  escalate: z.object({ reason: z.string().min(1).max(2000) }),
} as const;

/** The request body of an action, as its schema gives it. */
/**
 * A patch the imagery did not give (巡查发现, 群众举报): its outline drawn on a month's imagery, where it came
 * from, and whether that imagery shows it.
 */
export const ReportBody = z.object({
  outline: LonLatPolygon.describe('the outline in lon/lat (EPSG:4326), drawn on the imagery of `month`'),
  month: z
    .string()
    .regex(MONTH_PATTERN, en('form_month'))
    .optional()
    .describe('the imagery month it was drawn on (a month with a completed batch); default: the latest'),
  source: z
    .enum(PATCH_SOURCES.filter((s) => s !== 'imagery') as ['patrol', 'complaint'])
    .describe('patrol: a town found it (巡查发现); complaint: the public reported it (群众举报)'),
  visible: z
    .boolean()
    .describe("the month's imagery shows it and the baseline month's does not: a building the model missed"),
  note: z.string().max(2000).optional(),
  request_key: RequestKey.describe("the client's key for this report: sent again, it makes no second patch"),
});
export type ReportBody = z.infer<typeof ReportBody>;

export type ActionBody<A extends keyof typeof ActionBodies> = z.infer<(typeof ActionBodies)[A]>;

export const PatchQuerySchema = z
  .object({
    month: z.string().regex(MONTH_PATTERN, en('form_month')).optional(),
    town: TownCode.optional(),
    status: z
      .string()
      .regex(/^[a-z_]{1,32}$/, en('form_status_name'))
      .optional(),
    class: z.enum(['ecological', 'farmland', 'water', 'general']).optional(),
    overdue: z.enum(['true', 'false']).optional(),
    escalated: z.enum(['true', 'false']).optional(),
    bbox: z
      .string()
      .regex(/^-?\d{1,3}(\.\d+)?(,-?\d{1,3}(\.\d+)?){3}$/, en('form_bbox'))
      .refine((v) => {
        const [a, b, c, d] = v.split(',').map(Number);
        return a >= -180 && c <= 180 && b >= -90 && d <= 90 && a <= c && b <= d;
      }, en('form_bbox_order'))
      .optional(),
    relation: z
      .enum(BUILDING_RELATIONS)
      .optional()
      .describe('relation to registered buildings: new, extension (扩建), on_building (原址改建加建)'),
    check: z
      .enum(LOOKBACK_RESULTS)
      .optional()
      .describe("the latest imagery check's result (回头看): gone, standing, unclear, no_imagery"),
    source: z
      .enum(PATCH_SOURCES)
      .optional()
      .describe('where the patches came from: imagery (a batch), patrol (巡查发现), complaint (群众举报)'),
    min_area_m2: z.coerce.number().min(0).optional().describe('smallest patch area shown, m²'),
    max_area_m2: z.coerce.number().min(0).optional().describe('largest patch area shown, m²'),
    sort: z.enum(['code', 'area_m2', 'due', 'status', 'town', 'relation']).default('code'),
    dir: z.enum(['asc', 'desc']).default('asc'),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
    offset: z.coerce.number().int().min(0).max(1_000_000_000).default(0),
    after: z
      .string()
      .regex(/^[0-9A-Za-z-]{1,64}$/, en('form_after'))
      .optional()
      .describe(
        "the page after this patch code (the answer's next_after; sort=code only): as fast at the millionth patch as at the first, where offset reads every row it skips",
      ),
  })
  .refine((q) => q.after === undefined || q.sort === 'code', { message: en('form_after_sort'), path: ['after'] });
export type PatchQuery = z.infer<typeof PatchQuerySchema>;

/** A note on a patch: text only, no state change. */
export const NoteBody = z.object({ text: z.string().min(1).max(4000) });

/**
 * Which patches an export holds, by state: a comma-separated list of states, or `open` for every state
 * that still needs work (dismissed, closed and other finished cases need no blank verdict sheet).
 */
export const ExportStatusFilter = z
  .string()
  .max(300)
  .transform((v, ctx) => {
    const names = v
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const out = new Set<string>();
    for (const n of names) {
      if (n === 'open') {
        for (const s of PATCH_STATES) if (!FINAL_STATES.includes(s)) out.add(s);
      } else if ((PATCH_STATES as readonly string[]).includes(n)) {
        out.add(n);
      } else {
        addSaidIssue(ctx, say('form_status_filter', { name: n, states: PATCH_STATES.join(', ') }));
        return z.NEVER;
      }
    }
    return [...out];
  })
  .describe('patch states to include, comma-separated, or "open" for the unfinished ones; default all');
