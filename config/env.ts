import { BadInputError } from '../core/errors.ts';
import { resolve } from 'node:path';
import { z } from 'zod';
import { formatIssues } from '../core/issues.ts';

/** Scenes are processed in parts of at most this many pixels a side, unless TUBAN_PART_PX says otherwise. */
export const DEFAULT_PART_PX = 3072;

/** A whole number of at least `min` (`dflt` when unset), refused with the value it was given. */
const wholeNumber = (min: number, dflt: number) =>
  z
    .string()
    .optional()
    .transform((raw, ctx) => {
      if (raw === undefined) return dflt;
      const v = Number(raw);
      if (Number.isInteger(v) && v >= min) return v;
      ctx.addIssue({ code: 'custom', message: `${raw}: expected a whole number ≥ ${min}` });
      return z.NEVER;
    });

/**
 * Reading imagery and objects by URL (pipeline/io/byte.source.ts, remoteSettings): parsed with the
 * rest at start, and again from the environment of the moment each time a remote source is opened.
 */
const RemoteShape = {
  /** An S3-compatible store (MinIO, …; path-style requests when set); unset: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, else AWS's. */
  TUBAN_S3_ENDPOINT: z
    .string()
    .regex(/^https?:\/\//, { error: (iss) => `${String(iss.input)}: expected an http:// or https:// URL` })
    .optional(),
  /** The store's region; unset: AWS_REGION, AWS_DEFAULT_REGION, else us-east-1. */
  TUBAN_S3_REGION: z.string().optional(),
  /** Credentials for s3:// imagery and TUBAN_STORAGE_URL, both or neither; unset: AWS's usual chain (AWS_ACCESS_KEY_ID, AWS_PROFILE, instance roles). */
  TUBAN_S3_ACCESS_KEY_ID: z.string().optional(),
  TUBAN_S3_SECRET_ACCESS_KEY: z.string().optional(),
  /** Time limit of one ranged request to S3 or HTTP (ms). */
  TUBAN_REMOTE_TIMEOUT_MS: wholeNumber(1, 30_000),
  /** Megabytes of remote blocks kept per process, so the part next door takes the blocks along its seam from memory. */
  TUBAN_REMOTE_CACHE_MB: wholeNumber(0, 256),
  /** Tries of a ranged request after the first (backoff 0.2 s doubling, at most 5 s). */
  TUBAN_REMOTE_RETRIES: wholeNumber(0, 3),
};

/** The S3 key id and secret go together. */
function bothKeysOrNeither(
  env: { TUBAN_S3_ACCESS_KEY_ID?: string; TUBAN_S3_SECRET_ACCESS_KEY?: string },
  ctx: z.RefinementCtx,
): void {
  if (!env.TUBAN_S3_ACCESS_KEY_ID === !env.TUBAN_S3_SECRET_ACCESS_KEY) return;
  ctx.addIssue({
    code: 'custom',
    path: [env.TUBAN_S3_ACCESS_KEY_ID ? 'TUBAN_S3_SECRET_ACCESS_KEY' : 'TUBAN_S3_ACCESS_KEY_ID'],
    message: 'TUBAN_S3_ACCESS_KEY_ID and TUBAN_S3_SECRET_ACCESS_KEY go together: set both or neither',
  });
}

/**
 * Every environment variable tuban reads, parsed once. The README's configuration table is
 * this schema in words; keep them together.
 */
const EnvSchema = z.object({
  /** PostgreSQL/PostGIS connection string. Unset: embedded PGlite under TUBAN_DATA_DIR/pgdata (single process). */
  DATABASE_URL: z.string().optional(),
  /** The role the app logs in as, when migrations run as another (the owner): `db migrate` grants it rows, not ownership. */
  TUBAN_APP_ROLE: z
    .string()
    .regex(/^[a-z_][a-z0-9_]*$/, 'lower-case SQL identifier')
    .optional(),
  /** Schema holding tuban's tables (PostGIS itself stays in `public`). */
  TUBAN_DB_SCHEMA: z
    .string()
    .regex(/^[a-z_][a-z0-9_]*$/, 'lower-case SQL identifier')
    .default('tuban'),
  /** Redis for BullMQ. */
  REDIS_URL: z.string().default('redis://127.0.0.1:6379'),
  /** BullMQ key prefix, so several tubans (or test runs) share one Redis. */
  TUBAN_QUEUE_PREFIX: z.string().default('tuban'),
  /** Working files: PGlite data, evidence uploads, the demo's fixtures. */
  TUBAN_DATA_DIR: z.string().default('data'),
  /** Evidence photos and imagery previews in an S3-compatible store (store/objects.ts); unset: under TUBAN_DATA_DIR. */
  TUBAN_STORAGE_URL: z
    .string()
    .regex(/^s3:\/\/[^/]+(\/.*)?$/i, 's3://bucket or s3://bucket/prefix')
    .optional(),
  /** EPSG code of the projected CRS all geometries are stored in. */
  TUBAN_STORAGE_SRID: z.coerce.number().int().positive().default(4548),
  /** Expected ground sample distance of delivered imagery (m) and the relative tolerance. */
  TUBAN_GSD_M: z.coerce.number().positive().default(0.5),
  TUBAN_GSD_TOLERANCE: z.coerce.number().min(0).max(1).default(0.1),
  /** Change model folder (with manifest.json). */
  TUBAN_MODEL_DIR: z.string().default('models/siam-unet-lite'),
  /**
   * Labelled folders replayed beside the city's own chips when `tuban model train` fine-tunes, so the model does
   * not forget what it knew: comma-separated `DIR[@SCALE][=WEIGHT]` as train.py reads them (SCALE resamples to
   * 0.5 m, WEIGHT is the folder's share of samples; the city's chips take 0.5). Unset: the city's chips alone.
   */
  TUBAN_TRAINING_REPLAY: z.string().default(''),
  /**
   * Shared validation sets `tuban model evaluate` scores every model on (pixel F1 through onnxruntime), and
   * `promote` refuses a model that loses more than 0.01 on any of them: comma-separated `DIR[#SPLIT_FILE]`
   * (the split file names the folder's validation images). Unset: the held-out month alone decides.
   */
  TUBAN_MODEL_VALIDATION: z.string().default(''),
  /** Python with torch, numpy and Pillow for `tuban model train` (Debian's python3-torch). */
  TUBAN_PYTHON: z.string().default('/usr/bin/python3'),
  /** CPU threads a fine-tune takes (it runs in the background beside the batch and the server). */
  TUBAN_TRAIN_THREADS: z.coerce.number().int().positive().default(1),
  /** Threshold on change probability; unset uses the model manifest's default. */
  TUBAN_THRESHOLD: z.coerce.number().gt(0).lt(1).optional(),
  /** Patches with a lower mean change probability are dropped; unset uses the model manifest's minMeanProbability (else 0). */
  TUBAN_MIN_MEAN_PROB: z.coerce.number().min(0).lt(1).optional(),
  /**
   * How the diff treats registered buildings (the `building` layer): `classify` keeps a change on or
   * against one as a patch and classes it (building_relation new / extension / on_building);
   * `subtract` erases it like a permit, as tuban did before. Only a valid permit makes a change legal.
   */
  TUBAN_BUILDING_POLICY: z.enum(['classify', 'subtract']).default('classify'),
  /** Share of a patch's area inside registered footprints from which it is `on_building` (rebuilt, raised, built on top) rather than an extension. */
  TUBAN_ON_BUILDING_SHARE: z.coerce.number().gt(0).max(1).default(0.5),
  /** How close a registered building must come to a change to meet it (m): nearer, the change is on or against it (extension, on_building); farther, new. */
  TUBAN_BUILDING_TOUCH_M: z.coerce.number().min(0).max(10).default(0.5),
  /** Mean-probability floors for patches on registered buildings; unset: the model manifest's minMeanProbabilityByRelation, else TUBAN_MIN_MEAN_PROB's. */
  TUBAN_MIN_MEAN_PROB_EXTENSION: z.coerce.number().min(0).lt(1).optional(),
  TUBAN_MIN_MEAN_PROB_ON_BUILDING: z.coerce.number().min(0).lt(1).optional(),
  /**
   * 回头看: a patch ordered demolished or confiscated is judged by every later batch whose imagery covers
   * it, while rectifying or rectified and for this many months after it is closed.
   */
  TUBAN_LOOKBACK_MONTHS: z.coerce.number().int().min(0).max(120).default(12),
  /** The disappearance score over a footprint (pipeline/lookback.judge.ts, 0..1) from which a structure is `gone`, and up to which it is `standing`; in between `unclear`. Defaults 0.6 and 0.4. */
  TUBAN_LOOKBACK_GONE_AT: z.coerce.number().gt(0).lt(1).optional(),
  TUBAN_LOOKBACK_STANDING_AT: z.coerce.number().gt(0).lt(1).optional(),
  /** District (区) code for patches outside every town polygon; towns carry their own. */
  TUBAN_DISTRICT_CODE: z
    .string()
    .regex(/^\d{6}$/, 'six-digit administrative code')
    .default('350206'),
  /** Smallest patch kept (m²). */
  TUBAN_MIN_AREA_M2: z.coerce.number().min(0).default(20),
  /** Douglas–Peucker tolerance applied to patches (m). */
  TUBAN_SIMPLIFY_M: z.coerce.number().min(0).default(0.5),
  /** Permits and existing buildings are grown by this much before subtraction (m). */
  TUBAN_LEGAL_BUFFER_M: z.coerce.number().min(0).default(1.5),
  /** Opening radius that removes slivers after subtraction (m). */
  TUBAN_OPENING_M: z.coerce.number().min(0).default(1),
  /**
   * Connections one batch's diff uses at once on PostgreSQL (the embedded database has one): its
   * candidates are worked out in this many slices and its districts' patches written this many at a
   * time. Each takes a core of the database server for the seconds the diff runs.
   */
  TUBAN_DIFF_PARALLEL: z.coerce.number().int().min(1).max(4).default(2),
  /**
   * Jobs in flight per queue in one worker process. With 2, one part's reading, vectorizing and
   * database round trips run while the other part is in the model (on the model's own thread), and
   * memory grows by one part (about 110 MB at the default part size). With onnxruntime on every core
   * that work only competes with the model: on 2 cores the real LEVIR mosaics ran 31.1 s with 1 and
   * 34.6 s with 2, the fixture month 22.3 s and 24.0 s, so the default is 1. It helps where round
   * trips are slow (a remote database) or TUBAN_ORT_THREADS leaves cores idle.
   */
  TUBAN_CONCURRENCY: z.coerce.number().int().positive().default(1),
  /** Scenes are processed in parts of at most this many pixels a side (bounded memory; several workers per scene). */
  TUBAN_PART_PX: z.coerce.number().int().min(256).default(DEFAULT_PART_PX),
  /** Redraw building-like patches as rectangles or at right angles (also `batch run --regularise`). */
  TUBAN_REGULARISE: z
    .enum(['true', 'false', '1', '0'])
    .default('false')
    .transform((v) => v === 'true' || v === '1'),
  /** Largest relative area change regularisation may make (0.1 = 10 %). */
  TUBAN_REGULARISE_MAX_CHANGE: z.coerce.number().min(0).max(0.5).default(0.1),
  /**
   * onnxruntime threads per inference (intra-op); default: every core Node sees (os.availableParallelism).
   * onnxruntime's own default is the physical cores, which on this 2-vCPU machine is one thread: the
   * model alone ran 1.6 times slower that way.
   */
  TUBAN_ORT_THREADS: z.coerce.number().int().positive().optional(),
  /** Attempts per tile job before it is marked failed (transient errors only). */
  TUBAN_JOB_ATTEMPTS: z.coerce.number().int().positive().default(3),
  /** BullMQ job lock (ms): a worker that dies is noticed this long after its last renewal. */
  TUBAN_LOCK_MS: z.coerce.number().int().min(1000).default(60_000),
  /** How often workers look for stalled jobs (ms). */
  TUBAN_STALLED_INTERVAL_MS: z.coerce.number().int().min(500).default(30_000),
  /** On SIGTERM, how long the job in hand may take to finish before the worker gives up (ms). */
  TUBAN_STOP_TIMEOUT_MS: z.coerce.number().int().min(0).default(60_000),
  /** Fault-injection hook for the resilience tests only: `stage:ms[,stage:ms]` pauses that long inside a stage (detect, vectorize, candidates, emit, diff). */
  TUBAN_FAULT_PAUSE: z
    .string()
    .regex(/^((detect|vectorize|candidates|emit|diff):\d+,?)*$/, 'stage:ms pairs')
    .optional(),
  /** Working-day calendar (holidays, make-up days) for deadlines. */
  TUBAN_CALENDAR_FILE: z.string().default('config/calendar.cn.json'),
  /** Deadline policy JSON file ({verifyDays, rectifyDays, escalateAfterDays}); unset: built-in defaults. */
  TUBAN_DEADLINES_FILE: z.string().optional(),
  /** The bureau's 问责 rule for the yearly register (JSON: overdueUnrectified, escalations, monthsWithoutZeroGrowth); unset: one illegal case left unrectified past its deadline. */
  TUBAN_ACCOUNTABILITY_FILE: z.string().optional(),
  /** Largest image registration accepts, in megapixels (a whole city's month in one file is 6,800). */
  TUBAN_MAX_IMAGE_MPX: z.coerce.number().positive().default(10_000),
  /** Largest evidence upload (bytes). */
  TUBAN_EVIDENCE_MAX_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(20 * 1024 * 1024),
  /** A site photo taken farther than this from its patch (metres, by its GPS tags) is flagged 远离图斑. */
  TUBAN_EVIDENCE_MAX_DISTANCE_M: z.coerce.number().min(0).max(100_000).default(100),
  /** Photos of the site a verdict of 违法 needs (0: none required). */
  TUBAN_EVIDENCE_MIN_VERIFY_PHOTOS: z.coerce.number().int().min(0).max(20).default(1),
  /** Photos of the result a report of 整改完成 needs, taken since the order (0: none required). */
  TUBAN_EVIDENCE_MIN_RECTIFY_PHOTOS: z.coerce.number().int().min(0).max(20).default(1),
  /** Days an API token (from login or issued) lives. */
  TUBAN_TOKEN_DAYS: z.coerce.number().int().min(1).max(3650).default(30),
  /** Failed logins for one user name from one address within TUBAN_LOGIN_WINDOW_S before further tries from there get 429. */
  TUBAN_LOGIN_FAILURES_PER_USER: z.coerce.number().int().min(1).default(5),
  /** Failed logins from one address within TUBAN_LOGIN_WINDOW_S before further tries get 429. */
  TUBAN_LOGIN_FAILURES_PER_ADDRESS: z.coerce.number().int().min(1).default(20),
  TUBAN_LOGIN_WINDOW_S: z.coerce.number().int().min(1).default(900),
  /** An API request not answered within this many seconds gets 503 (its database statements are cancelled too); exports have TUBAN_EXPORT_TIMEOUT_S. */
  TUBAN_HTTP_TIMEOUT_S: z.coerce.number().int().min(1).default(60),
  /** Heavy exports (PDF sheets, town packages) the server makes at once; more wait in line. */
  TUBAN_EXPORT_CONCURRENCY: z.coerce.number().int().min(1).default(2),
  /** Heavy exports that may wait for a place; beyond that a request gets 503 with Retry-After. */
  TUBAN_EXPORT_QUEUE: z.coerce.number().int().min(0).default(8),
  /** An export still running after this many seconds is stopped (503); so is one whose client went away. */
  TUBAN_EXPORT_TIMEOUT_S: z.coerce.number().int().min(1).default(600),
  /** A .ttf/.ttc font with Chinese glyphs for PDF sheets; unset: the first of the Debian CJK fonts found. */
  TUBAN_PDF_FONT: z.string().optional(),
  /** HTTP server address. */
  TUBAN_HOST: z.string().default('127.0.0.1'),
  TUBAN_PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  /** The city's UTC offset in hours (deadlines count in local dates). */
  TUBAN_UTC_OFFSET_H: z.coerce.number().min(-12).max(14).default(8),
  /** The web app's address as people open it (https://tuban.example.gov.cn): links in notifications; unset: codes without links. */
  TUBAN_PUBLIC_URL: z.url({ protocol: /^https?$/ }).optional(),
  /** Quiet hours in city time, `HH:MM-HH:MM` (may span midnight): messages wait until they end; empty: none. */
  TUBAN_NOTIFY_QUIET: z
    .string()
    .regex(/^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$/, 'HH:MM-HH:MM, e.g. 22:00-07:30')
    .or(z.literal('none'))
    .default('22:00-07:30'),
  /** The daily sweep reminds towns of deadlines within this many working days (0: no reminders). */
  TUBAN_NOTIFY_DUE_DAYS: z.coerce.number().int().min(0).max(20).default(2),
  /** A robot that has not answered within this many seconds is given up on for this try. */
  TUBAN_NOTIFY_TIMEOUT_S: z.coerce.number().min(0.1).max(120).default(10),
  /** Tries per message before it is marked failed and reported (a refusal is never tried again). */
  TUBAN_NOTIFY_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(8),
  /** The first retry's delay (ms); each later one doubles it. */
  TUBAN_NOTIFY_BACKOFF_MS: z.coerce.number().int().min(10).default(30_000),
  /** How often a worker looks for messages not yet queued (written by the CLI, or lost with a Redis restart), ms. */
  TUBAN_NOTIFY_RELAY_MS: z.coerce.number().int().min(100).default(15_000),
  TUBAN_LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  ...RemoteShape,
});

/** With the two S3 keys checked together; RemoteSchema is the same for the remote settings alone. */
const ConfigSchema = EnvSchema.superRefine(bothKeysOrNeither);
const RemoteSchema = z.object(RemoteShape).superRefine(bothKeysOrNeither);

export type Config = z.infer<typeof EnvSchema> & { dataDir: string; modelDir: string };

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = ConfigSchema.safeParse(setOnly(env));
  if (!parsed.success) {
    const lines = `  ${formatIssues(parsed.error.issues, '(root)', '\n  ')}`;
    throw new BadInputError('bad_config', `invalid configuration in the environment:\n${lines}`, {
      fields: parsed.error.issues.map((i) => i.path.join('.')),
    });
  }
  const c = parsed.data;
  return { ...c, dataDir: resolve(c.TUBAN_DATA_DIR), modelDir: resolve(c.TUBAN_MODEL_DIR) };
}

/** The variables that are set: an empty one counts as unset. */
const setOnly = (env: NodeJS.ProcessEnv) => Object.fromEntries(Object.entries(env).filter(([, v]) => v !== ''));

export type RemoteConfig = z.infer<typeof RemoteSchema>;

/** The TUBAN_S3_* and TUBAN_REMOTE_* settings alone; a bad one is refused naming its variable. */
export function loadRemoteConfig(env: NodeJS.ProcessEnv = process.env): RemoteConfig {
  const parsed = RemoteSchema.safeParse(setOnly(env));
  if (parsed.success) return parsed.data;
  const [issue] = parsed.error.issues;
  throw new BadInputError('bad_setting', formatIssues(parsed.error.issues), { variable: String(issue.path[0]) });
}

/** True when DATABASE_URL is unset: the embedded PGlite database (one process only). */
export function isEmbedded(config: Config): boolean {
  return !config.DATABASE_URL;
}
