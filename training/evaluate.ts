/**
 * Whether a candidate model is better than the running one, in the city's own terms: on a month of town
 * verdicts it was not trained on, the share of confirmed patches it would find and the share of what it
 * would flag that the towns dismissed as false; beside them, pixel F1 on the shared validation sets
 * (TUBAN_MODEL_VALIDATION). `promoteModel` lets a candidate run only when the held-out month improves and
 * no shared set falls by more than 0.01.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { evaluateDataset, label, rgb, source } from './dataset.eval.ts';
import { BadInputError, ConflictError } from '../core/errors.ts';
import { checkMonth } from '../core/month.ts';
import { detectTile, releaseProbability } from '../pipeline/detect.tile.ts';
import { OnnxChangeModel } from '../pipeline/io/model.onnx.ts';
import {
  getModel,
  listModels,
  modelLabel,
  recordModelEvent,
  runningModel,
  updateModel,
  type ModelRow,
} from '../store/models.ts';
import { exportTrainingChips } from './chips.ts';
import { ensureRunning, refreshTraining, type ModelEnv } from './models.ts';

/** A patch counts as flagged when the model's mask covers this share of its outline … */
const HIT_SHARE = 0.2;
/** … and at least this many m² of it. */
const HIT_MIN_M2 = 8;
/** How much pixel F1 a shared validation set may lose before a promotion is refused. */
export const MAX_VALIDATION_DROP = 0.01;

export interface HeldOut {
  /** Verified patches of the month with a chip: confirmed changes, and false changes or dismissals. */
  confirmed: number;
  dismissed: number;
  /** Confirmed patches the model flags, and dismissed ones it flags. */
  found: number;
  falseFlagged: number;
  /**
   * Of the confirmed, those reported by a town or the public (巡查, 举报) — buildings the model that ran missed —
   * and how many of them this model flags: the recall the rule sees beyond what a batch flagged.
   */
  reported?: number;
  reportedFound?: number;
  /** found / confirmed; falseFlagged / (found + falseFlagged); their harmonic mean with 1 − falseShare. */
  foundShare: number;
  falseShare: number;
  score: number;
  /**
   * Share of the chips' unjudged ground (outside every verified outline and its ring: known/) the model flags.
   * Not in the rule: no town has looked there, so a rise is missed buildings found or new false alarms.
   */
  unjudgedFlagged?: number;
}

export interface ValidationFigure {
  set: string;
  pixelF1: number;
  objectRecall: number | null;
  objectF1: number | null;
}

export interface ModelFigures {
  id: number;
  model: string;
  heldOut: HeldOut;
  validation: ValidationFigure[];
}

export interface Evaluation {
  month: string;
  at: string;
  running: ModelFigures;
  candidate: ModelFigures;
  verdict: PromotionVerdict;
}

export interface PromotionVerdict {
  promote: boolean;
  reasons: string[];
}

/** The promotion rule: the held-out month's score rises, and no shared set loses more than 0.01 pixel F1. */
export function promotionVerdict(running: ModelFigures, candidate: ModelFigures): PromotionVerdict {
  const reasons: string[] = [];
  let promote = true;
  const h = (f: HeldOut) =>
    `score ${f.score.toFixed(3)} (found ${f.found}/${f.confirmed} = ${f.foundShare.toFixed(3)}${f.reported ? `, of them reported misses ${f.reportedFound}/${f.reported}` : ''}, false ${f.falseFlagged}/${f.found + f.falseFlagged} = ${f.falseShare.toFixed(3)})`;
  if (candidate.heldOut.score > running.heldOut.score)
    reasons.push(`held-out month improves: ${h(candidate.heldOut)} against ${h(running.heldOut)}`);
  else {
    promote = false;
    reasons.push(`held-out month does not improve: ${h(candidate.heldOut)} against ${h(running.heldOut)}`);
  }
  for (const c of candidate.validation) {
    const r = running.validation.find((v) => v.set === c.set);
    if (!r) continue;
    const drop = r.pixelF1 - c.pixelF1;
    const line = `${c.set}: pixel F1 ${c.pixelF1.toFixed(3)} against ${r.pixelF1.toFixed(3)} (${drop > 0 ? '−' : '+'}${Math.abs(drop).toFixed(3)})`;
    if (drop > MAX_VALIDATION_DROP) {
      promote = false;
      reasons.push(`${line}: falls by more than ${MAX_VALIDATION_DROP}`);
    } else reasons.push(line);
  }
  return { promote, reasons };
}

/** The configured shared sets: `DIR[#SPLIT_FILE]`, comma-separated. */
export function validationSets(spec: string): { key: string; dir: string; split?: string }[] {
  return spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((key) => {
      const [dir, split] = key.split('#');
      return { key, dir, split: split || undefined };
    });
}

async function validationFigures(env: ModelEnv, m: ModelRow): Promise<ValidationFigure[]> {
  const out: ValidationFigure[] = [];
  const cache = { ...m.validation } as Record<string, ValidationFigure & { sha256?: string | null }>;
  let changed = false;
  for (const s of validationSets(env.config.TUBAN_MODEL_VALIDATION)) {
    let f = cache[s.key];
    if (!f || f.sha256 !== m.sha256) {
      const r = await evaluateDataset(s.dir, m.dir, { split: s.split, sweep: [] });
      f = {
        set: s.key,
        pixelF1: r.total.pixel.f1 ?? 0,
        objectRecall: r.total.object.recall,
        objectF1: r.total.object.f1,
        sha256: m.sha256,
      };
      cache[s.key] = f;
      changed = true;
    }
    out.push({ set: f.set, pixelF1: f.pixelF1, objectRecall: f.objectRecall, objectF1: f.objectF1 });
  }
  if (changed) await updateModel(env.db, m.id, { validation: cache });
  return out;
}

/** A model's figures on the month's verdict chips (A/ B/ own/ and the export's manifest). */
export async function heldOutFigures(
  modelDir: string,
  chipsDir: string,
  chips: { name: string; label: 'change' | 'no_change'; gsdM: number; source?: string }[],
): Promise<HeldOut> {
  const model = await OnnxChangeModel.load(modelDir);
  const threshold = model.manifest.defaultThreshold;
  let confirmed = 0;
  let dismissed = 0;
  let found = 0;
  let falseFlagged = 0;
  let reported = 0;
  let reportedFound = 0;
  let unjudged = 0;
  let unjudgedFlagged = 0;
  try {
    for (const c of chips) {
      const a = await rgb(join(chipsDir, 'A', c.name));
      const b = await rgb(join(chipsDir, 'B', c.name));
      const { data: own } = await label(join(chipsDir, 'own', c.name));
      const { data: known } = await label(join(chipsDir, 'known', c.name));
      const r = await detectTile({
        after: source(c.name, b, c.gsdM),
        baselines: [{ source: source(c.name, a, c.gsdM) }],
        model,
      });
      let inside = 0;
      let covered = 0;
      for (let i = 0; i < own.length; i++)
        if (own[i]) {
          inside++;
          if (r.probability[i] >= threshold) covered++;
        } else if (!known[i]) {
          unjudged++;
          if (r.probability[i] >= threshold) unjudgedFlagged++;
        }
      releaseProbability(r);
      const hit = inside > 0 && covered >= HIT_SHARE * inside && covered * c.gsdM * c.gsdM >= HIT_MIN_M2;
      if (c.label === 'change') {
        confirmed++;
        if (hit) found++;
        if (c.source && c.source !== 'imagery') {
          reported++;
          if (hit) reportedFound++;
        }
      } else {
        dismissed++;
        if (hit) falseFlagged++;
      }
    }
  } finally {
    await model.close();
  }
  const foundShare = confirmed ? found / confirmed : 0;
  const falseShare = found + falseFlagged ? falseFlagged / (found + falseFlagged) : 0;
  const precision = 1 - falseShare;
  const score = foundShare + precision ? (2 * foundShare * precision) / (foundShare + precision) : 0;
  const r3 = (v: number) => Math.round(v * 1000) / 1000;
  return {
    confirmed,
    dismissed,
    found,
    falseFlagged,
    reported,
    reportedFound,
    foundShare: r3(foundShare),
    falseShare: r3(falseShare),
    score: r3(score),
    unjudgedFlagged: unjudged ? Math.round((unjudgedFlagged / unjudged) * 10000) / 10000 : 0,
  };
}

/**
 * `tuban model evaluate`: the candidate (default: the newest) beside the running model on `month`'s
 * verdicts, which the candidate must not have been trained on, and on the shared validation sets. The
 * figures and the promotion verdict are kept on the candidate for `promote`.
 */
export async function evaluateModel(env: ModelEnv, opts: { month: string; id?: number }): Promise<Evaluation> {
  checkMonth(opts.month, '--month');
  const running = await ensureRunning(env);
  const candidate = opts.id
    ? await refreshTraining(env, await getModel(env.db, opts.id))
    : (await listModels(env.db)).filter((m) => m.status === 'candidate').pop();
  if (!candidate)
    throw new BadInputError(
      'no_candidate',
      'no candidate model to evaluate (tuban model train, or tuban model register DIR)',
      {
        field: '--model',
      },
    );
  if (candidate.status !== 'candidate' && candidate.status !== 'retired')
    throw new ConflictError(
      `--model ${candidate.id}: ${modelLabel(candidate)} is ${candidate.status}, not a candidate`,
      {
        field: '--model',
      },
    );
  // the month must be outside what the candidate learned, and what every model it was fine-tuned from learned
  for (let m: ModelRow | null = candidate; m; m = m.parent_id ? await getModel(env.db, m.parent_id) : null) {
    const t = m.trained_on;
    if (t && opts.month >= t.since && opts.month <= t.until)
      throw new BadInputError(
        'not_held_out',
        `${modelLabel(candidate)}${m.id === candidate.id ? '' : ` (through ${modelLabel(m)}, which it was fine-tuned from)`} was trained on the verdicts of ${t.since}…${t.until}: evaluate it on a month outside them (--month)`,
        { field: '--month' },
      );
  }
  const dir = mkdtempSync(join(tmpdir(), 'tuban-heldout-'));
  try {
    const chips = await exportTrainingChips(env.db, { month: opts.month, outDir: dir });
    if (!chips.chips.length)
      throw new BadInputError(
        'no_verdicts',
        `${opts.month} has no verified patches with imagery to judge a model on (${chips.skipped.length} skipped)`,
        { field: '--month' },
      );
    const figures = async (m: ModelRow): Promise<ModelFigures> => ({
      id: m.id,
      model: modelLabel(m),
      heldOut: await heldOutFigures(m.dir, dir, chips.chips),
      validation: await validationFigures(env, m),
    });
    const r = await figures(running);
    const c = await figures(candidate);
    const evaluation: Evaluation = {
      month: opts.month,
      at: new Date().toISOString(),
      running: r,
      candidate: c,
      verdict: promotionVerdict(r, c),
    };
    await updateModel(env.db, candidate.id, { evaluation: evaluation as unknown as Record<string, unknown> });
    await recordModelEvent(env.db, candidate.id, 'evaluated', env.actor, {
      month: opts.month,
      against: running.id,
      promote: evaluation.verdict.promote,
    });
    return evaluation;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Lets a candidate run, by the rule: it needs an evaluation made against the model running now, whose
 * verdict is to promote. A refusal is recorded with its figures and thrown as a conflict naming them.
 */
export async function promoteModel(
  env: ModelEnv,
  id: number,
): Promise<{ promoted: ModelRow; replaced: ModelRow; verdict: PromotionVerdict }> {
  const candidate = await getModel(env.db, id);
  if (candidate.status !== 'candidate' && candidate.status !== 'retired')
    throw new ConflictError(
      `${modelLabel(candidate)} (#${id}) is ${candidate.status}: only a candidate (or a model set aside) can be promoted`,
    );
  const running = await ensureRunning(env);
  const ev = candidate.evaluation as Evaluation | null;
  if (!ev)
    throw new ConflictError(
      `${modelLabel(candidate)} (#${id}) has not been evaluated: tuban model evaluate --month M --model ${id}`,
    );
  if (ev.running.id !== running.id)
    throw new ConflictError(
      `${modelLabel(candidate)} was evaluated against ${ev.running.model}, but ${modelLabel(running)} runs now: evaluate it again`,
    );
  if (!ev.verdict.promote) {
    await recordModelEvent(env.db, id, 'refused', env.actor, { month: ev.month, reasons: ev.verdict.reasons });
    throw new ConflictError(`promotion of ${modelLabel(candidate)} refused:\n  ${ev.verdict.reasons.join('\n  ')}`, {
      model: modelLabel(candidate),
      reasons: ev.verdict.reasons,
    });
  }
  return env.db.transaction(async (trx) => {
    await trx.raw('lock table detector_model in share row exclusive mode');
    const now = await runningModel(trx);
    if (now?.id !== running.id) throw new ConflictError('the running model changed meanwhile: evaluate again');
    const replaced = await updateModel(trx, running.id, { status: 'retired' });
    const promoted = await updateModel(trx, id, { status: 'running', promoted_at: new Date() });
    await recordModelEvent(trx, id, 'promoted', env.actor, {
      replaced: running.id,
      month: ev.month,
      reasons: ev.verdict.reasons,
    });
    await recordModelEvent(trx, running.id, 'retired', env.actor, { by: id });
    return { promoted, replaced, verdict: ev.verdict };
  });
}

/** The figures as the CLI prints them. */
export function evaluationText(ev: Evaluation): string {
  const row = (label: string, f: ModelFigures) =>
    [
      label.padEnd(10),
      f.model.padEnd(28),
      `${f.heldOut.found}/${f.heldOut.confirmed}`.padStart(9),
      `${f.heldOut.reportedFound ?? 0}/${f.heldOut.reported ?? 0}`.padStart(9),
      f.heldOut.foundShare.toFixed(3).padStart(7),
      `${f.heldOut.falseFlagged}/${f.heldOut.found + f.heldOut.falseFlagged}`.padStart(9),
      f.heldOut.falseShare.toFixed(3).padStart(7),
      f.heldOut.score.toFixed(3).padStart(7),
      `${((f.heldOut.unjudgedFlagged ?? 0) * 100).toFixed(2)}%`.padStart(10),
      ...f.validation.map((v) => v.pixelF1.toFixed(3).padStart(8)),
    ].join(' ');
  const sets = ev.candidate.validation.map((v, i) => `  [${i + 1}] ${v.set}`);
  return [
    `held-out month ${ev.month}: ${ev.running.heldOut.confirmed} confirmed patches (${ev.running.heldOut.reported ?? 0} of them reported by towns or the public: missed by the model that ran), ${ev.running.heldOut.dismissed} dismissed as false`,
    [
      ''.padEnd(10),
      'model'.padEnd(28),
      'found'.padStart(9),
      'reported'.padStart(9),
      'share'.padStart(7),
      'false'.padStart(9),
      'share'.padStart(7),
      'score'.padStart(7),
      'unjudged'.padStart(10),
      ...ev.candidate.validation.map((_, i) => `F1 [${i + 1}]`.padStart(8)),
    ].join(' '),
    row('running', ev.running),
    row('candidate', ev.candidate),
    'reported: of the confirmed, those found on patrol or reported by the public (巡查, 举报), that the model flags',
    "unjudged: share of the chips' ground no town judged that the model flags (not in the rule: missed buildings or false alarms)",
    ...(sets.length ? ['shared validation sets (pixel F1):', ...sets] : []),
    `${ev.verdict.promote ? 'PROMOTE' : 'DO NOT PROMOTE'}:`,
    ...ev.verdict.reasons.map((r) => `  ${r}`),
  ].join('\n');
}

/** The JSON figures of an evaluation, read back from a row. */
export const evaluationOf = (m: ModelRow): Evaluation | null => (m.evaluation as Evaluation | null) ?? null;

/** A model card's training record (training.json of its folder), if it has one. */
export function trainingRecord(m: ModelRow): Record<string, unknown> | null {
  try {
    return JSON.parse(readFileSync(join(m.dir, 'training.json'), 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
}
