/**
 * The city's change models as versions in the database (migration 030): register a model folder, fine-tune
 * the running model on verified patches in the background, and promote or roll back. Held-out evaluation
 * and the promotion rule are in training/evaluate.ts.
 */
import { spawn } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config/env.ts';
import { BadInputError, ConflictError, NotFoundError } from '../core/errors.ts';
import { checkMonth } from '../core/month.ts';
import { loadManifest, type ModelManifest } from '../pipeline/io/model.manifest.ts';
import type { Db } from '../store/db.ts';
import {
  deleteModel,
  findModel,
  getModel,
  insertModel,
  listModels,
  modelEvents,
  modelLabel,
  recordModelEvent,
  runningModel,
  settleTraining,
  updateModel,
  type ModelRow,
  type TrainedOn,
} from '../store/models.ts';
import { exportTrainingChips } from './chips.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const RECIPE = join(REPO, 'models/siam-unet-lite');
/** Files a model folder may hold; model.onnx and manifest.json are required. */
const MODEL_FILES = ['manifest.json', 'model.onnx', 'weights.npz', 'training.json', 'README.md'];

export interface ModelEnv {
  db: Db;
  config: Config;
  /** Who acts: a user name, or `cli` / `system`. */
  actor: string;
}

/** What a model's name and version may hold: they name folders and appear in the training script. */
const SAFE_NAME = /^(?!\.{1,2}$)[A-Za-z0-9._+-]{1,64}$/;

/** Where a registered model's files live: a copy under TUBAN_DATA_DIR/models/NAME/VERSION, so the register's versions never change under it. */
export const modelHome = (config: Config, m: { name: string; version: string }): string =>
  join(config.dataDir, 'models', m.name, m.version);

/** Refuses a manifest whose name or version could not name a folder of its own. */
function checkNames(m: { name: string; version: string }, file: string): void {
  for (const [field, v] of [
    ['name', m.name],
    ['version', m.version],
  ] as const)
    if (!SAFE_NAME.test(v))
      throw new BadInputError(
        'model_manifest',
        `${file}: ${field} ${JSON.stringify(v.slice(0, 80))} may hold only letters, digits and . _ + - (at most 64, not . or ..)`,
        { file, field },
      );
}

/**
 * Adds a model folder to the register as a candidate (or as the running model, when the register has none
 * running yet): its manifest is checked (sha256 of model.onnx included) and its files copied under
 * TUBAN_DATA_DIR/models.
 */
export async function registerModel(
  env: ModelEnv,
  dir: string,
  opts: { running?: boolean; note?: string } = {},
): Promise<ModelRow> {
  const { manifest, dir: from } = loadManifest(dir);
  checkNames(manifest, join(from, 'manifest.json'));
  const existing = await findModel(env.db, manifest.name, manifest.version);
  if (existing) {
    if (existing.sha256 !== manifest.sha256)
      throw new ConflictError(
        `${modelLabel(manifest)} is already in the register with another model.onnx (sha256 ${existing.sha256?.slice(0, 12)}…, this one ${manifest.sha256?.slice(0, 12)}…): give the new one its own version`,
        { model: modelLabel(manifest), dir: from },
      );
    return existing;
  }
  const running = await runningModel(env.db);
  if (opts.running && running)
    throw new ConflictError(
      `${modelLabel(running)} is running: register ${modelLabel(manifest)} as a candidate and promote it (tuban model evaluate, tuban model promote)`,
      { model: modelLabel(manifest) },
    );
  const home = modelHome(env.config, manifest);
  copyModelFiles(from, home);
  loadManifest(home); // the copy reads back as the original did
  const row = await insertModel(env.db, {
    name: manifest.name,
    version: manifest.version,
    dir: home,
    sha256: manifest.sha256 ?? null,
    status: opts.running ? 'running' : 'candidate',
    card: manifest as unknown as Record<string, unknown>,
  });
  if (opts.running) await updateModel(env.db, row.id, { promoted_at: new Date() });
  await recordModelEvent(env.db, row.id, 'registered', env.actor, {
    from,
    status: row.status,
    ...(opts.note ? { note: opts.note } : {}),
  });
  return getModel(env.db, row.id);
}

function copyModelFiles(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const f of MODEL_FILES) if (existsSync(join(from, f))) copyFileSync(join(from, f), join(to, f));
}

/**
 * The running model, registering the configured TUBAN_MODEL_DIR as the first one when the register is empty
 * (a city's first `tuban model` command). Throws when the register has models but none running.
 */
export async function ensureRunning(env: ModelEnv): Promise<ModelRow> {
  const running = await runningModel(env.db);
  if (running) return running;
  if ((await listModels(env.db)).length)
    throw new NotFoundError(
      'no model is running: promote one (tuban model promote ID) or roll back (tuban model rollback)',
    );
  return registerModel(env, env.config.modelDir, {
    running: true,
    note: 'the configured TUBAN_MODEL_DIR, first in the register',
  });
}

/** The folder new batches run: the register's running model, else TUBAN_MODEL_DIR. */
export async function batchModelDir(db: Db, config: Config): Promise<{ dir: string; from: 'register' | 'config' }> {
  const running = await runningModel(db);
  return running ? { dir: running.dir, from: 'register' } : { dir: config.modelDir, from: 'config' };
}

/** The folder of the model a batch ran (name and version), from the register, or undefined when it is not there. */
export async function modelDirOf(db: Db, name: string, version: string): Promise<string | undefined> {
  return (await findModel(db, name, version))?.dir;
}

// ------------------------------------------------------------------------------------------------
// Fine-tuning in the background

export interface TrainOptions {
  since: string;
  until?: string;
  /**
   * Optimiser steps at most and minutes of training at most (default 60): whichever comes first. The default
   * steps, rate and city share are the short fine-tune the Pakistan proof promoted (README: runs 16–17): 270
   * steps kept LEVIR within 0.003 where 1,200–2,100 lost 0.016–0.061.
   */
  steps?: number;
  minutes?: number;
  batch?: number;
  crop?: number;
  lr?: number;
  /** Share of samples from the city's chips when replay folders are set (default 0.3). */
  cityShare?: number;
  /** Keep BatchNorm on the running model's statistics (train.py --freeze-bn). */
  freezeBn?: boolean;
  /** Weight of the squared distance from the running model's weights in the loss (train.py --anchor; 0: off). */
  anchor?: number;
  /**
   * Unjudged ground at least this far (m) from every patch of its month, flagged or reported, counts as known
   * "no change" in the city's chips (more negatives like those of the shared data; unset: only verdicts count).
   */
  quietM?: number;
  /** Wait for the run to end (tests, scripts); without it the command returns once training has started. */
  wait?: boolean;
}

/** A fine-tune's defaults: short, slow and with most samples replayed (what the proof promoted). */
const TRAIN_DEFAULTS = { steps: 300, lr: 5e-5, cityShare: 0.3 } as const;

/**
 * Starts a fine-tune of the running model on the verified patches from `since` to `until` (default: the
 * latest month with patches): chips of every verified patch (tuban training export), the replay folders of
 * TUBAN_TRAINING_REPLAY beside them, train.py from the running model's weights in a process of its own
 * (checkpoints every minute; `resumeTraining` goes on from one), then export.py with the running model's
 * thresholds into the new version's folder. The new version is registered as `training` at once and
 * becomes a `candidate` when the run ends well (`refreshTraining`).
 */
export async function startTraining(env: ModelEnv, opts: TrainOptions): Promise<ModelRow> {
  const { db, config } = env;
  checkMonth(opts.since, '--since');
  const until =
    opts.until ?? ((await db('patch').max('month as m').first()) as { m: string | null } | undefined)?.m ?? opts.since;
  checkMonth(until, '--until');
  if (opts.since > until) throw new BadInputError('bad_month', `--since ${opts.since} is after --until ${until}`);
  for (const [field, v, lo, hi] of [
    ['--steps', opts.steps, 1, 1_000_000],
    ['--minutes', opts.minutes, 0.1, 24 * 60],
    ['--batch', opts.batch, 1, 256],
    ['--crop', opts.crop, 32, 1024],
    ['--city-share', opts.cityShare, 0.01, 1],
    ['--lr', opts.lr, 1e-7, 1],
    ['--anchor', opts.anchor, 0, 1000],
    ['--quiet-m', opts.quietM, 0, 1000],
  ] as const)
    if (v !== undefined && !(Number.isFinite(v) && v >= lo && v <= hi))
      throw new BadInputError('bad_option', `${field} ${v}: expected a number from ${lo} to ${hi}`, { field });
  const parent = await ensureRunning(env);
  const weights = join(parent.dir, 'weights.npz');
  if (!existsSync(weights) || !existsSync(join(parent.dir, 'training.json')))
    throw new BadInputError(
      'not_trainable',
      `${modelLabel(parent)} cannot be fine-tuned: ${parent.dir} has no weights.npz and training.json (only a trained siam-unet-lite can)`,
      { model: modelLabel(parent), file: weights },
    );
  const replay = config.TUBAN_TRAINING_REPLAY.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const spec of replay) {
    const folder = spec.replace(/[@=].*$/, '');
    if (!existsSync(join(folder, 'A')))
      throw new BadInputError('bad_replay', `TUBAN_TRAINING_REPLAY: ${folder} has no A/ folder of labelled pairs`, {
        field: 'TUBAN_TRAINING_REPLAY',
      });
  }
  const base = parent.version.replace(/\+.*$/, '');
  const taken = (await listModels(db))
    .filter((m) => m.name === parent.name && m.version.startsWith(`${base}+city.`))
    .map((m) => Number(m.version.slice(`${base}+city.`.length)) || 0);
  const version = `${base}+city.${Math.max(0, ...taken) + 1}`;
  const home = modelHome(config, { name: parent.name, version });
  const runDir = join(config.dataDir, 'training', parent.name, version);
  const chipsDir = join(runDir, 'chips');
  // the version is taken first (a second train started at the same moment is refused by the register's
  // unique name and version), then its run folder is emptied and the chips cut into it
  const trainedOn: TrainedOn = {
    since: opts.since,
    until,
    runDir,
    chipsDir,
    chips: 0,
    positives: 0,
    negatives: 0,
    replay,
    steps: opts.steps ?? TRAIN_DEFAULTS.steps,
    minutes: opts.minutes ?? 60,
    ...(opts.quietM ? { quietM: opts.quietM } : {}),
    error: 'cutting the training chips; if this stays, the command stopped before training began',
  };
  const row0 = await insertModel(db, {
    name: parent.name,
    version,
    dir: home,
    status: 'failed',
    parent_id: parent.id,
    trained_on: trainedOn,
  });
  rmSync(runDir, { recursive: true, force: true });
  let chips: Awaited<ReturnType<typeof exportTrainingChips>>;
  try {
    chips = await exportTrainingChips(db, { month: until, since: opts.since, outDir: chipsDir, quietM: opts.quietM });
  } catch (err) {
    await deleteModel(db, row0.id);
    throw err;
  }
  if (!chips.chips.length) {
    await deleteModel(db, row0.id);
    throw new BadInputError(
      'no_verdicts',
      `no verified patches from ${opts.since} to ${until} with imagery to cut chips from (${chips.skipped.length} skipped${chips.skipped.length ? `, e.g. ${chips.skipped[0].code}: ${chips.skipped[0].reason}` : ''}): nothing to learn from`,
      { field: '--since' },
    );
  }
  const positives = chips.chips.filter((c) => c.label === 'change').length;
  Object.assign(trainedOn, {
    chips: chips.chips.length,
    skipped: {
      count: chips.skipped.length,
      example: chips.skipped[0] ? `${chips.skipped[0].code}: ${chips.skipped[0].reason}` : null,
    },
    positives,
    negatives: chips.chips.length - positives,
    error: undefined,
  });
  const row = await updateModel(db, row0.id, { status: 'training', trained_on: trainedOn });
  writeTrainScript(config, parent, row, trainedOn, opts);
  return launch(env, row, false, opts.wait);
}

/** The run's shell script: train.py (its arguments after the script's own) then export.py; the exit status goes to `exit-code`. */
function writeTrainScript(config: Config, parent: ModelRow, row: ModelRow, t: TrainedOn, opts: TrainOptions): void {
  const m = loadManifest(parent.dir).manifest;
  const prov = m.provenance as { exportedWith?: { flip?: boolean; symmetric?: boolean } };
  const cityShare = opts.cityShare ?? TRAIN_DEFAULTS.cityShare;
  const replayShare = t.replay.length ? (1 - cityShare) / t.replay.length : 0;
  const q = (s: string | number) => `'${String(s).replace(/'/g, `'\\''`)}'`;
  const train = [
    'models/siam-unet-lite/train.py',
    '--data',
    t.replay.length ? `${t.chipsDir}=${cityShare}` : t.chipsDir,
    ...t.replay.flatMap((s) => ['--data', s.includes('=') ? s : `${s}=${replayShare}`]),
    ...(existsSync(join(RECIPE, 'split.json')) ? ['--split', join(RECIPE, 'split.json')] : []),
    '--init',
    join(parent.dir, 'weights.npz'),
    '--steps',
    t.steps,
    '--max-minutes',
    t.minutes,
    '--batch',
    opts.batch ?? 16,
    '--crop',
    opts.crop ?? 128,
    '--lr',
    opts.lr ?? TRAIN_DEFAULTS.lr,
    // the weights' moving average, as the base models were trained: a fine-tune of a few thousand steps on a
    // few hundred chips moves the weights less abruptly
    '--ema',
    0.999,
    ...(opts.freezeBn ? ['--freeze-bn'] : []),
    ...(opts.anchor ? ['--anchor', opts.anchor] : []),
    '--same',
    0.1,
    '--scale',
    '0.7,1.4',
    '--eval-every',
    0,
    '--checkpoint-minutes',
    1,
    '--threads',
    config.TUBAN_TRAIN_THREADS,
    '--out',
    join(t.runDir, 'run'),
  ];
  const exp = [
    'models/siam-unet-lite/export.py',
    join(t.runDir, 'run'),
    row.dir,
    '--name',
    row.name,
    '--version',
    row.version,
    '--threshold',
    m.defaultThreshold,
    ...(m.minMeanProbability !== undefined ? ['--min-mean-prob', m.minMeanProbability] : []),
    ...(m.interior ? ['--interior-threshold', m.interior.threshold] : ['--no-interior']),
    ...(prov.exportedWith?.flip ? ['--flip'] : []),
    ...(prov.exportedWith?.symmetric ? ['--symmetric'] : []),
    ...(m.inputType === 'float32' ? ['--float-input'] : []),
  ];
  const py = q(config.TUBAN_PYTHON);
  const script = [
    '#!/usr/bin/env bash',
    `# a fine-tune made by tuban model train (model #${row.id}); "$@" goes to train.py (--resume)`,
    `cd ${q(REPO)}`,
    `rm -f ${q(join(t.runDir, 'exit-code'))}`,
    `${py} ${train.map(q).join(' ')} "$@" || { echo $? > ${q(join(t.runDir, 'exit-code'))}; exit 1; }`,
    `${py} ${exp.map(q).join(' ')}; echo $? > ${q(join(t.runDir, 'exit-code'))}`,
    '',
  ].join('\n');
  writeFileSync(join(t.runDir, 'train.sh'), script, { mode: 0o755 });
}

async function launch(env: ModelEnv, row: ModelRow, resume: boolean, wait?: boolean): Promise<ModelRow> {
  const t = row.trained_on!;
  const log = openSync(join(t.runDir, 'train.log'), 'a');
  const child = spawn('bash', [join(t.runDir, 'train.sh'), ...(resume ? ['--resume'] : [])], {
    detached: !wait,
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  const exited = new Promise<void>((ok) => child.once('exit', () => ok()));
  const started = await new Promise<number>((ok, fail) => {
    child.once('spawn', () => ok(child.pid!));
    child.once('error', fail);
  });
  const trained_on = { ...t, pid: started, error: undefined };
  await updateModel(env.db, row.id, { status: 'training', trained_on });
  await recordModelEvent(env.db, row.id, resume ? 'train_resumed' : 'train_started', env.actor, {
    pid: started,
    since: t.since,
    until: t.until,
    chips: t.chips,
    replay: t.replay,
  });
  if (!wait) {
    child.unref();
    return getModel(env.db, row.id);
  }
  await exited;
  return refreshTraining(env, await getModel(env.db, row.id));
}

/** Whether a process runs (on this machine). */
function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface TrainingProgress {
  step: number;
  steps: number;
  seconds: number;
  /** 0..1, by steps or by minutes, whichever is further along (as train.py ends). */
  share: number;
  loss: number | null;
}

/** The run's progress from its log (train.py prints every 100 steps) and its last checkpoint's record. */
export function trainingProgress(row: ModelRow): TrainingProgress | null {
  const t = row.trained_on;
  if (!t) return null;
  let step = 0;
  let seconds = 0;
  let loss: number | null = null;
  const logPath = join(t.runDir, 'train.log');
  if (existsSync(logPath)) {
    for (const m of readFileSync(logPath, 'utf8').matchAll(/^step (\d+) loss ([\d.]+) lr [\d.]+ (\d+)s/gm)) {
      step = Number(m[1]);
      loss = Number(m[2]);
      seconds = Number(m[3]);
    }
  }
  const recordPath = join(t.runDir, 'run', 'training.json');
  if (existsSync(recordPath)) {
    try {
      const r = JSON.parse(readFileSync(recordPath, 'utf8')) as { steps: number; trainingSeconds: number };
      if (r.steps > step) [step, seconds] = [r.steps, r.trainingSeconds];
    } catch {
      // being written: the log's figures stand
    }
  }
  const share = Math.min(1, Math.max(step / t.steps, t.minutes ? seconds / (t.minutes * 60) : 0));
  return { step, steps: t.steps, seconds, share, loss };
}

/**
 * Settles a `training` row whose run has ended: registered as a candidate (its manifest checked) when
 * train.py and export.py both succeeded, else `failed` with the log's last lines. A run whose process is
 * gone without an exit status (killed, or the machine restarted) is failed too, resumable from its checkpoint.
 */
export async function refreshTraining(env: ModelEnv, row: ModelRow): Promise<ModelRow> {
  const t = row.trained_on;
  if (row.status !== 'training' || !t) return row;
  const exitPath = join(t.runDir, 'exit-code');
  const tail = () =>
    existsSync(join(t.runDir, 'train.log'))
      ? readFileSync(join(t.runDir, 'train.log'), 'utf8').trimEnd().split('\n').slice(-6).join('\n')
      : '';
  const fail = async (error: string, detail: Record<string, unknown> = {}) => {
    if (await settleTraining(env.db, row.id, { status: 'failed', trained_on: { ...t, error } }))
      await recordModelEvent(env.db, row.id, 'train_failed', 'system', { error, ...detail });
    return getModel(env.db, row.id);
  };
  if (!existsSync(exitPath)) {
    // the process is looked for on this machine: run `tuban model` where the training runs
    if (alive(t.pid)) return row;
    return fail(
      `the training process ${t.pid} ended without an exit status (killed?); tuban model train --resume ${row.id} goes on from its last checkpoint`,
      { progress: trainingProgress(row) },
    );
  }
  const code = Number(readFileSync(exitPath, 'utf8').trim());
  if (code !== 0) return fail(`training exited with status ${code}: ${tail()}`);
  let manifest: ModelManifest;
  try {
    manifest = loadManifest(row.dir).manifest;
  } catch (err) {
    return fail(`the trained model does not load: ${(err as Error).message}`);
  }
  const progress = trainingProgress(row);
  if (
    await settleTraining(env.db, row.id, {
      status: 'candidate',
      sha256: manifest.sha256 ?? null,
      card: manifest as unknown as Record<string, unknown>,
      trained_on: { ...t, pid: undefined },
    })
  )
    await recordModelEvent(env.db, row.id, 'trained', 'system', { steps: progress?.step, seconds: progress?.seconds });
  return getModel(env.db, row.id);
}

/** Goes on with a fine-tune that stopped (killed, or failed), from its last checkpoint. */
export async function resumeTraining(env: ModelEnv, id: number, wait?: boolean): Promise<ModelRow> {
  const row = await refreshTraining(env, await getModel(env.db, id));
  const t = row.trained_on;
  if (!t)
    throw new BadInputError('not_training', `--resume ${id}: ${modelLabel(row)} was registered, not trained here`, {
      field: '--resume',
    });
  if (row.status === 'training')
    throw new ConflictError(`--resume ${id}: ${modelLabel(row)} is still training (process ${t.pid})`, {
      field: '--resume',
    });
  if (row.status !== 'failed')
    throw new ConflictError(
      `--resume ${id}: ${modelLabel(row)} is ${row.status}: only a stopped fine-tune can be resumed`,
      {
        field: '--resume',
      },
    );
  const checkpoint = join(t.runDir, 'run', 'checkpoint.pt');
  if (!existsSync(checkpoint))
    throw new BadInputError(
      'no_checkpoint',
      `${checkpoint} not found: the run stopped before its first checkpoint; train again`,
      {
        file: checkpoint,
      },
    );
  return launch(env, row, true, wait);
}

/** Every model with the state of its training brought up to date. */
export async function listModelsNow(env: ModelEnv): Promise<ModelRow[]> {
  const rows = await listModels(env.db);
  return Promise.all(rows.map((r) => (r.status === 'training' ? refreshTraining(env, r) : Promise.resolve(r))));
}

// ------------------------------------------------------------------------------------------------
// Rollback

/**
 * Puts back the model the running one replaced (its promotion event names it) and sets the running one
 * aside. A model registered as the first running one has nothing to go back to. Rolling back again goes one
 * model further back; a model set aside can be evaluated and promoted again.
 */
export async function rollbackModel(env: ModelEnv, reason?: string): Promise<{ from: ModelRow; to: ModelRow }> {
  return env.db.transaction(async (trx) => {
    await trx.raw('lock table detector_model in share row exclusive mode');
    const current = await runningModel(trx);
    if (!current) throw new NotFoundError('no model is running: nothing to roll back');
    const promoted = (await modelEvents(trx, current.id)).filter((e) => e.action === 'promoted').pop();
    const previousId = promoted?.detail.replaced as number | undefined;
    if (!previousId)
      throw new ConflictError(
        `${modelLabel(current)} was the first model in the register: there is none before it to roll back to`,
      );
    const previous = await getModel(trx, previousId);
    loadManifest(previous.dir); // its files are still there and whole, or the rollback is refused naming them
    await updateModel(trx, current.id, { status: 'retired' });
    const to = await updateModel(trx, previousId, { status: 'running', promoted_at: new Date() });
    await recordModelEvent(trx, current.id, 'rolled_back', env.actor, { to: previousId, reason: reason ?? null });
    await recordModelEvent(trx, previousId, 'restored', env.actor, { from: current.id, reason: reason ?? null });
    return { from: await getModel(trx, current.id), to };
  });
}
