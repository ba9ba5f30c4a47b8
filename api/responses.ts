/**
 * The shapes of the API's answers, as zod schemas. The server declares them as its routes' responses
 * (so OpenAPI shows them and every answer is checked against them before it leaves), and the web app
 * imports their types: one definition for both sides. Objects are loose: a field added on the server
 * reaches the client before a schema names it, and nothing is stripped.
 *
 * This module imports only zod, so that the browser bundle's type check can read it.
 */
import { z } from 'zod';

/** What an evidence file documents: the building as found on site (核查) or the result of the order (整改). */
export const EVIDENCE_STAGES = ['verify', 'rectify'] as const;
/**
 * Why a photo may not prove what it is attached to, from its EXIF and the server's clock (workflow/evidence.proof.ts).
 */
export const PHOTO_FLAGS = [
  'no_time',
  'no_position',
  'before_dispatch',
  'before_rectify',
  'after_upload',
  'far',
] as const;

export const ROLE_NAMES = ['analyst', 'town', 'supervisor', 'admin'] as const;

/** A day as YYYY-MM-DD, or null. */
export const Day = z.string().nullable();
/** A time: a Date on the server (written as ISO 8601), a string on the wire. */
const Time = z.union([z.string(), z.date()]).describe('ISO 8601 time');

export const UserBody = z.looseObject({
  id: z.number(),
  username: z.string(),
  displayName: z.string(),
  role: z.enum(ROLE_NAMES),
  townCode: z.string().nullable(),
  townName: z.string().nullable().optional().describe("the town's name from the town layer (GET /api/me)"),
});
export type UserBody = z.output<typeof UserBody>;

/** A signed-in session: the token to send as `Authorization: Bearer …`, whose it is, until when. */
export const TokenBody = z.looseObject({
  token: z.string().describe('shown once: only its hash is stored'),
  user: UserBody,
  expires_at: z.string().describe('ISO 8601 time'),
});
export type TokenBody = z.output<typeof TokenBody>;

/** A user as the admin page lists them. */
const UserSummaryBody = UserBody.extend({
  disabled: z.boolean(),
  activeTokens: z.number().int().describe('tokens neither revoked nor expired'),
  lastUsedAt: z.string().nullable().describe('when a token of theirs was last used'),
});
export const UsersBody = z.array(UserSummaryBody);
export type UsersBody = z.output<typeof UsersBody>;

/** What an admin's move on a user did. */
export const UserChangeBody = z.looseObject({
  user: UserBody,
  disabled: z.boolean().optional(),
  revoked: z.number().int().describe('sign-ins (tokens) ended'),
});
export const RevokedBody = z.looseObject({ revoked: z.number().int().describe('tokens revoked') });

/** A work line's state: running now, waiting for a place. */
const LineStats = z.looseObject({ running: z.number().int(), waiting: z.number().int() });
export const HealthBody = z.looseObject({
  ok: z.literal(true),
  exports: LineStats.describe('PDF sheets and town packages'),
  images: LineStats.describe('chips and thumbnails'),
  calendar: z.looseObject({
    years: z.tuple([z.number().int(), z.number().int()]).describe('the first and last year the calendar covers'),
    covered_until: z.string(),
    warning: z.string().nullable().describe('said from 60 days before the calendar ends'),
  }),
  notifications: z
    .looseObject({ refused: z.number().int(), failed: z.number().int() })
    .nullable()
    .describe("this week's messages a robot refused, or that failed for good; null when unknown"),
});
export type HealthBody = z.output<typeof HealthBody>;

export const MapConfigBody = z.looseObject({
  srid: z.number().int(),
  proj4: z.string(),
  maxImageryResolution: z.number().describe('the coarsest resolution (m/px) with imagery tiles'),
  tileGrid: z.looseObject({
    origin: z.tuple([z.number(), z.number()]),
    tileSizePx: z.number().int(),
    resolutions: z.array(z.number()).readonly(),
  }),
  months: z.array(
    z.looseObject({
      month: z.string(),
      baselineMonth: z.string().nullable(),
      extent: z.tuple([z.number(), z.number(), z.number(), z.number()]),
      gsdM: z.number(),
      tiles: z.number().int(),
    }),
  ),
});
export type MapConfigBody = z.output<typeof MapConfigBody>;

/** The town boundaries, GeoJSON in the storage CRS. */
export const TownsBody = z.looseObject({
  type: z.literal('FeatureCollection'),
  features: z.array(
    z.looseObject({
      type: z.literal('Feature'),
      id: z.string(),
      geometry: z.unknown(),
      properties: z.looseObject({ code: z.string(), name: z.string() }),
    }),
  ),
});
export type TownsBody = z.output<typeof TownsBody>;

/** A JSON Schema as the API gives it for an action's body (the web app builds its forms from it). */
export interface JsonSchema {
  type?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  enum?: string[];
  const?: string;
  oneOf?: JsonSchema[];
  anyOf?: JsonSchema[];
  description?: string;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  maxLength?: number;
  items?: unknown;
}

export const MetaBody = z.looseObject({
  actions: z.record(
    z.string(),
    z.looseObject({
      label: z.string(),
      from: z.array(z.string()).readonly(),
      roles: z.array(z.string()).readonly(),
      schema: z.custom<JsonSchema>((v) => typeof v === 'object' && v !== null).describe('JSON Schema of the body'),
    }),
  ),
  evidence_max_bytes: z.number().int().optional().describe('the largest photo or file an upload takes'),
  evidence_min_photos: z
    .object({ verify: z.number().int(), rectify: z.number().int() })
    .optional()
    .describe('site photos a verdict of illegal needs, and photos of the result a report of rectified needs'),
});
export type MetaBody = z.output<typeof MetaBody>;

/** How a patch relates to the registered buildings (the building layer). */
const BuildingRelation = z
  .enum(['new', 'extension', 'on_building'])
  .describe(
    'new: no registered building within the legal buffer; extension (扩建): meets one, mostly outside it; on_building (原址改建加建): mostly inside a registered footprint',
  );

/** 回头看: the latest judgement of an ordered demolition from a later month's imagery. */
export const ImageryCheck = z
  .looseObject({
    month: z.string(),
    result: z.enum(['gone', 'standing', 'unclear', 'no_imagery']),
    score: z
      .number()
      .nullable()
      .describe('mean change probability over the footprint against the month it was detected in'),
    model_name: z.string(),
    model_version: z.string(),
  })
  .nullable();
export type ImageryCheck = z.output<typeof ImageryCheck>;

/** One patch in a list (and a map feature's properties). */
export const PatchListItem = z.looseObject({
  code: z.string(),
  month: z.string(),
  town_code: z.string().nullable(),
  town_name: z.string().nullable(),
  grid_code: z.string().nullable(),
  class: z.string(),
  status: z.string(),
  area_m2: z.number(),
  farmland_m2: z.number(),
  ecological_m2: z.number(),
  water_m2: z.number(),
  verify_due: Day,
  rectify_due: Day,
  verify_due_provisional: z
    .boolean()
    .optional()
    .describe("the verification deadline lies past the working-day calendar's last year: counted on weekends alone"),
  rectify_due_provisional: z.boolean().optional().describe('the same for the rectification deadline'),
  overdue_since: Day,
  escalated: z.boolean(),
  verification_result: z.string().nullable(),
  measure: z.string().nullable(),
  source: z
    .enum(['imagery', 'patrol', 'complaint'])
    .optional()
    .describe('where the patch came from: a batch, or a report (巡查发现, 群众举报)'),
  building_relation: BuildingRelation,
  registered_building_m2: z.number().describe('overlap with registered building footprints, m²'),
  extension_m2: z.number().describe('area outside registered building footprints, m²'),
  imagery_check: ImageryCheck,
  lon: z.number(),
  lat: z.number(),
});
export type PatchListItem = z.output<typeof PatchListItem>;

export const PatchListBody = z.looseObject({
  total: z.number().int(),
  next_after: z
    .string()
    .nullable()
    .describe('in code order, the `after` that gives the next page; null on the last page or in another order'),
  patches: z.array(PatchListItem),
});
export type PatchListBody = z.output<typeof PatchListBody>;

export const PatchFeatureCollection = z.looseObject({
  type: z.literal('FeatureCollection'),
  total: z.number().int(),
  next_after: z.string().nullable().describe('as in /api/patches'),
  crs: z.unknown(),
  features: z.array(
    z.looseObject({
      type: z.literal('Feature'),
      id: z.string(),
      geometry: z.unknown().describe('GeoJSON geometry in the storage CRS'),
      properties: PatchListItem,
    }),
  ),
});
export type PatchFeatureCollection = z.output<typeof PatchFeatureCollection>;

const PatchEvent = z.looseObject({
  at: Time,
  actor: z.string(),
  type: z.string(),
  from_status: z.string().nullable(),
  to_status: z.string().nullable(),
  detail: z.unknown(),
});
const PatchObservation = z.looseObject({
  month: z.string(),
  kind: z.string(),
  area_m2: z.number().nullable(),
  mean_prob: z.number().nullable(),
});
const EvidenceItem = z.looseObject({
  id: z.union([z.number(), z.string()]),
  filename: z.string(),
  content_type: z.string(),
  bytes: z.number(),
  note: z.string().nullable(),
  uploaded_at: Time,
  taken_at: z.string().nullable().describe("the camera's time (EXIF), as it wrote it"),
  lon: z.number().nullable().describe('where the photo was taken (EXIF GPS, WGS 84)'),
  lat: z.number().nullable(),
  stage: z
    .enum(EVIDENCE_STAGES)
    .describe('what it documents: verify (核查, the building as found) or rectify (整改, the result)'),
  flags: z
    .array(z.enum(PHOTO_FLAGS))
    .describe("why the photo may not prove what it is attached to, from its EXIF and the server's clock"),
  distance_m: z.number().nullable().describe("metres from the camera's position to the patch outline (0 inside)"),
  stamped: z.boolean().describe('a stamped copy exists (GET /api/evidence/{id}/stamped.jpg)'),
  author: z.string().describe('who uploaded it'),
});

/** An uploaded evidence file as stored: its proof (stage, flags) and whether a stamped copy was made. */
export const EvidenceUploadBody = EvidenceItem.pick({
  id: true,
  content_type: true,
  taken_at: true,
  lon: true,
  lat: true,
  stage: true,
  flags: true,
  distance_m: true,
  stamped: true,
}).extend({
  sha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .describe("the original's SHA-256, as uploaded"),
  repeated: z.boolean().optional().describe('this request key had stored the file before: nothing new was stored'),
});

export const PatchDetailBody = z.looseObject({
  code: z.string(),
  month: z.string(),
  baseline_month: z.string().nullable(),
  status: z.string(),
  class: z.string(),
  district_code: z.string().nullable(),
  town_code: z.string().nullable(),
  town_name: z.string().nullable(),
  grid_code: z.string().nullable(),
  area_m2: z.number(),
  farmland_m2: z.number(),
  ecological_m2: z.number(),
  water_m2: z.number(),
  mean_prob: z.number().nullable(),
  model: z.string().nullable().describe('the model that made it (name and version); null for a reported patch'),
  source: z
    .enum(['imagery', 'patrol', 'complaint'])
    .describe("imagery: made by a batch; patrol (巡查发现) and complaint (群众举报): reported on a month's imagery"),
  visible: z
    .boolean()
    .nullable()
    .describe("a reported patch: whether the month's imagery shows it (null for a patch made by a batch)"),
  verification_result: z.string().nullable(),
  violation: z.string().nullable(),
  permit_ref: z.string().nullable(),
  measure: z.string().nullable(),
  dismiss_reason: z.string().nullable(),
  verify_due: Day,
  rectify_due: Day,
  verify_due_provisional: z
    .boolean()
    .optional()
    .describe("the verification deadline lies past the working-day calendar's last year: counted on weekends alone"),
  rectify_due_provisional: z.boolean().optional().describe('the same for the rectification deadline'),

  overdue_since: Day,
  escalated: z.boolean(),
  rebuilt_of: z.string().nullable(),
  regularised: z.string().nullable(),
  raw_area_m2: z.number().nullable(),
  building_relation: BuildingRelation,
  registered_building_m2: z.number(),
  extension_m2: z.number(),
  imagery_check: ImageryCheck,
  split_from: z.string().nullable(),
  merged_into: z.string().nullable(),
  allowed_actions: z.array(z.string()),
  deadline: z
    .object({
      kind: z.enum(['verification', 'rectification']),
      due: z.string(),
      days_left: z.number().int().describe('working days to the deadline: 0 due today, negative overdue'),
      provisional: z.boolean(),
    })
    .nullable()
    .optional()
    .describe('the deadline now running (dispatched: verification; rectifying: rectification), with working days left'),
  geometry: z.unknown().describe('GeoJSON geometry in lon/lat (EPSG:4326)'),
  lon: z
    .number()
    .describe('a point inside the patch (its stored centroid, ST_PointOnSurface), as the exports print it'),
  lat: z.number(),
  history: z.array(PatchEvent),
  observations: z.array(PatchObservation),
  evidence: z.array(EvidenceItem),
});
export type PatchDetailBody = z.output<typeof PatchDetailBody>;

/** A batch's states (the batch table's check), a scene's (batch_tile) and a BullMQ job's, as the batch pages show them in words. */
export const BATCH_STATES = ['queued', 'running', 'completed', 'completed_with_failures', 'failed'] as const;
export const TILE_STATES = ['queued', 'detected', 'vectorized', 'failed'] as const;
export const JOB_STATES = [
  'waiting',
  'waiting-children',
  'delayed',
  'prioritized',
  'active',
  'completed',
  'failed',
  'unknown',
] as const;

export const BatchListItem = z.looseObject({
  id: z.union([z.number(), z.string()]).describe('batch id'),
  month: z.string(),
  baseline_month: z.string(),
  status: z.string(),
  model_name: z.string(),
  model_version: z.string(),
  created_at: Time,
  finished_at: Time.nullable(),
  tiles: z.number().int(),
  queued: z.number().int(),
  vectorized: z.number().int(),
  failed: z.number().int(),
  patches: z.looseObject({ new: z.number(), redetected: z.number() }).nullable(),
});
export type BatchListItem = z.output<typeof BatchListItem>;
export const BatchListBody = z.array(BatchListItem);

export const BatchProgressBody = z.looseObject({
  batch: BatchListItem,
  tiles: z.array(
    z.looseObject({
      imagery_id: z.union([z.number(), z.string()]),
      path: z.string().describe('the scene file name'),
      status: z.string(),
      error_code: z.string().nullable(),
      error_message: z.string().nullable(),
      parts: z.number().int(),
      parts_done: z.number().int(),
      part_jobs: z.string().nullable(),
      attempts: z.number().int(),
    }),
  ),
  diff: z.string().nullable(),
  jobs: z.record(z.string(), z.number()),
  queueAvailable: z.boolean(),
});
export type BatchProgressBody = z.output<typeof BatchProgressBody>;

/** Every error answer: the kind from errorFate, a code, a message that says what to do. */
export const ErrorBody = z.object({
  error: z.string().describe('the kind: bad_input, unauthorized, forbidden, not_found, conflict, transient, internal'),
  code: z.string().optional(),
  message: z.string(),
  allowed: z.array(z.string()).optional().describe('the moves allowed from the current state (409)'),
  request_id: z.string().optional(),
});
export type ErrorBody = z.output<typeof ErrorBody>;

/** A change model in the register (migration 030; `tuban model list`). */
export const ModelItem = z.looseObject({
  id: z.number().int(),
  name: z.string(),
  version: z.string(),
  status: z.enum(['training', 'failed', 'candidate', 'running', 'retired']),
  parent_id: z.number().int().nullable().describe('the model it was fine-tuned from'),
  trained_on: z
    .record(z.string(), z.unknown())
    .nullable()
    .describe('months of verdicts, chips, replay folders, run folder; null for a registered model'),
  evaluation: z
    .record(z.string(), z.unknown())
    .nullable()
    .describe('the last `tuban model evaluate` figures and verdict'),
  progress: z
    .object({
      step: z.number(),
      steps: z.number(),
      seconds: z.number(),
      share: z.number(),
      loss: z.number().nullable(),
    })
    .nullable(),
  created_at: Time,
  promoted_at: Time.nullable(),
});
export const ModelsBody = z.array(ModelItem);
export type ModelsBody = z.output<typeof ModelsBody>;
export const ModelPromotionBody = z.object({
  running: ModelItem,
  replaced: ModelItem,
  reasons: z.array(z.string()).describe('the held-out and shared-set figures that allowed it'),
});
export const ModelRollbackBody = z.object({ running: ModelItem, set_aside: ModelItem });
