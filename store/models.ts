import type { Db } from './db.ts';
import { ConflictError, NotFoundError } from '../core/errors.ts';

/** A change model's place in the city's register (migration 030). */
/** A model's states (migration 030's check), in the order of its life. */
export const MODEL_STATES = ['training', 'failed', 'candidate', 'running', 'retired'] as const;
export type ModelStatus = (typeof MODEL_STATES)[number];

export type ModelAction =
  | 'registered'
  | 'train_started'
  | 'train_resumed'
  | 'trained'
  | 'train_failed'
  | 'evaluated'
  | 'promoted'
  | 'refused'
  | 'rolled_back'
  | 'restored'
  | 'retired';

/** Where a fine-tune came from and how it runs (`tuban model train`). */
export interface TrainedOn {
  since: string;
  until: string;
  runDir: string;
  chipsDir: string;
  chips: number;
  /** Verified patches left out, with the commonest reason (imagery missing or not covering the chip). */
  skipped?: { count: number; example: string | null };
  positives: number;
  negatives: number;
  replay: string[];
  steps: number;
  minutes: number;
  /** Unjudged ground this far (m) from every patch counted as no change (tuban model train --quiet-m). */
  quietM?: number;
  pid?: number;
  error?: string;
}

export interface ModelRow {
  id: number;
  name: string;
  version: string;
  dir: string;
  sha256: string | null;
  status: ModelStatus;
  parent_id: number | null;
  card: Record<string, unknown> | null;
  trained_on: TrainedOn | null;
  evaluation: Record<string, unknown> | null;
  validation: Record<string, unknown>;
  created_at: Date;
  promoted_at: Date | null;
}

export interface ModelEventRow {
  id: number;
  model_id: number;
  action: ModelAction;
  actor: string;
  detail: Record<string, unknown>;
  at: Date;
}

/** A jsonb column's value for knex: undefined leaves the column as it is, null clears it. */
const json = (v: unknown) => (v === undefined ? undefined : v === null ? null : (JSON.stringify(v) as never));

/** `name version` as people write it. */
export const modelLabel = (m: { name: string; version: string }): string => `${m.name} ${m.version}`;

export async function listModels(db: Db): Promise<ModelRow[]> {
  return db<ModelRow>('detector_model').select('*').orderBy('id');
}

export async function getModel(db: Db, id: number): Promise<ModelRow> {
  const m = await db<ModelRow>('detector_model').where({ id }).first();
  if (!m) throw new NotFoundError(`no model #${id} in the register (tuban model list)`, { model: id });
  return m;
}

export async function findModel(db: Db, name: string, version: string): Promise<ModelRow | undefined> {
  return db<ModelRow>('detector_model').where({ name, version }).first();
}

export async function runningModel(db: Db): Promise<ModelRow | undefined> {
  return db<ModelRow>('detector_model').where({ status: 'running' }).first();
}

export async function insertModel(
  db: Db,
  row: Pick<ModelRow, 'name' | 'version' | 'dir' | 'status'> &
    Partial<Pick<ModelRow, 'sha256' | 'parent_id' | 'card' | 'trained_on'>>,
): Promise<ModelRow> {
  if (await findModel(db, row.name, row.version))
    throw new ConflictError(`${modelLabel(row)} is already in the register`, { model: modelLabel(row) });
  try {
    const [m] = await db<ModelRow>('detector_model')
      .insert({
        ...row,
        card: json(row.card) ?? null,
        trained_on: json(row.trained_on) ?? null,
      })
      .returning('*');
    return m;
  } catch (err) {
    // the same version registered (or trained) a moment ago by another command
    if ((err as { code?: string }).code === '23505')
      throw new ConflictError(
        `${modelLabel(row)} was added to the register a moment ago by another command: try again`,
        {
          model: modelLabel(row),
        },
      );
    throw err;
  }
}

/** Removes a model row that never got further than its start (a fine-tune with nothing to learn from). */
export async function deleteModel(db: Db, id: number): Promise<void> {
  await db('detector_model_event').where({ model_id: id }).delete();
  await db('detector_model').where({ id }).delete();
}

/**
 * Ends a fine-tune's `training` state once: the update applies only while the row is still training, so two
 * commands settling the same run at once record it once. Returns whether this call settled it.
 */
export async function settleTraining(
  db: Db,
  id: number,
  fields: Partial<Pick<ModelRow, 'status' | 'sha256' | 'card' | 'trained_on'>>,
): Promise<boolean> {
  const n = await db('detector_model')
    .where({ id, status: 'training' })
    .update({ ...fields, card: json(fields.card), trained_on: json(fields.trained_on) });
  return Number(n) > 0;
}

export async function updateModel(
  db: Db,
  id: number,
  fields: Partial<
    Pick<
      ModelRow,
      'status' | 'sha256' | 'card' | 'trained_on' | 'evaluation' | 'validation' | 'promoted_at' | 'dir' | 'version'
    >
  >,
): Promise<ModelRow> {
  const [m] = await db<ModelRow>('detector_model')
    .where({ id })
    .update({
      ...fields,
      card: json(fields.card),
      trained_on: json(fields.trained_on),
      evaluation: json(fields.evaluation),
      validation: json(fields.validation) ?? undefined, // never null: the column is not null
    })
    .returning('*');
  if (!m) throw new NotFoundError(`no model #${id} in the register`, { model: id });
  return m;
}

export async function recordModelEvent(
  db: Db,
  modelId: number,
  action: ModelAction,
  actor: string,
  detail: Record<string, unknown> = {},
): Promise<void> {
  await db('detector_model_event').insert({ model_id: modelId, action, actor, detail: JSON.stringify(detail) });
}

export async function modelEvents(db: Db, modelId?: number): Promise<ModelEventRow[]> {
  const q = db<ModelEventRow>('detector_model_event').select('*').orderBy('id');
  return modelId === undefined ? q : q.where({ model_id: modelId });
}
