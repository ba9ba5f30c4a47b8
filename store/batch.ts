import type { Db } from './db.ts';
import { ConflictError, NotFoundError } from '../core/errors.ts';
import { runSql } from './sql.ts';
import { addMonths } from '../core/month.ts';

/** A scene's or a part's state: detection and vectorizing are one job, so queued goes straight to vectorized or failed. */
export type TileStatus = 'queued' | 'vectorized' | 'failed';

export interface BatchTileRow {
  imagery_id: number;
  path: string;
  baseline_ids: number[];
  status: TileStatus;
  error_code: string | null;
  error_message: string | null;
}

export interface BatchRow {
  id: number;
  month: string;
  baseline_month: string;
  status: string;
  model_name: string;
  model_version: string;
  params: Record<string, unknown>;
  summary: BatchSummary | null;
  /** The retry round whose diff candidates are stored (store/batch.diff.ts), or null before the diff. */
  candidates_round?: number | null;
}

/** What a batch was launched with (workers/batch.launch.ts, batchParams); batches launched by older versions lack the later fields. */
export interface BatchParams {
  threshold: number;
  minAreaM2: number;
  minMeanProb: number;
  simplifyM: number;
  legalBufferM: number;
  partPx: number;
  regularise: boolean;
  regulariseMaxChange: number;
  buildingPolicy?: 'classify' | 'subtract';
  onBuildingShare?: number;
  buildingTouchM?: number;
  minMeanProbByRelation?: { extension: number; on_building: number };
  lookback?: { months: number; goneAt: number; standingAt: number };
  retryRound?: number;
}

export interface BatchSummary {
  batchId: number;
  month: string;
  baselineMonth: string;
  status: string;
  model: { name: string; version: string };
  tiles: { total: number; ok: number; failed: number };
  failedTiles: { path: string; code: string | null; reason: string | null }[];
  changePolygons: number;
  candidates: number;
  patches: { new: number; redetected: number };
  /** The new patches by their relation to registered buildings. */
  newByRelation?: Record<'new' | 'extension' | 'on_building', number>;
  /** Changes that were an ordered demolition judged gone (回头看), which became no patch. */
  demolitions?: number;
  /** 回头看: this batch's judgements of ordered demolitions, by result. */
  lookback?: Record<'gone' | 'standing' | 'unclear' | 'no_imagery', number>;
  perTown: { townCode: string; townName: string; newPatches: number; redetected: number; newAreaM2: number }[];
  /** Files of the month refused at registration (never part of a batch), with their reasons. */
  refusedFiles?: { path: string; code: string; reason: string }[];
  /** Milliseconds of the diff (candidates), re-detection matching and emit steps. */
  timings?: { diffMs: number; matchMs: number; emitMs: number; lookbackMs?: number };
}

export const previousMonth = (month: string): string => addMonths(month, -1);

/**
 * Create a batch and its tile rows. Tiles with no overlapping baseline image are failed at once
 * (reason `no_baseline`); the rest are queued. A month with a batch still queued or running is
 * refused, so two launches of the same month cannot race.
 */
export async function createBatch(
  db: Db,
  opts: {
    month: string;
    baselineMonth: string;
    modelName: string;
    modelVersion: string;
    params: Record<string, unknown>;
  },
): Promise<{ batch: BatchRow; tiles: BatchTileRow[] }> {
  return db.transaction(async (trx) => {
    await trx.raw('select pg_advisory_xact_lock(hashtext(?))', [`tuban-batch-${opts.month}`]);
    const active = await trx('batch').where({ month: opts.month }).whereIn('status', ['queued', 'running']).first();
    if (active)
      throw new ConflictError(
        `month ${opts.month} already has batch ${active.id} (${active.status}); wait for it or check 'tuban batch status'`,
        { batchId: active.id },
      );
    const pairs = await runSql<{ id: string; path: string; baseline_ids: string[] }>(trx, 'batch/pairs', {
      month: opts.month,
      baseline_month: opts.baselineMonth,
    });
    if (pairs.length === 0)
      throw new NotFoundError(
        `no imagery registered for ${opts.month}; run 'tuban imagery register --month ${opts.month} <dir>' first`,
      );
    const [batch] = await trx('batch')
      .insert({
        month: opts.month,
        baseline_month: opts.baselineMonth,
        status: 'queued',
        model_name: opts.modelName,
        model_version: opts.modelVersion,
        params: JSON.stringify(opts.params),
      })
      .returning('*');
    const tiles: BatchTileRow[] = pairs.map((p) => {
      const baselineIds = p.baseline_ids.map(Number);
      const noBaseline = baselineIds.length === 0;
      return {
        imagery_id: Number(p.id),
        path: p.path,
        baseline_ids: baselineIds,
        status: noBaseline ? 'failed' : 'queued',
        error_code: noBaseline ? 'no_baseline' : null,
        error_message: noBaseline ? `${p.path}: no ${opts.baselineMonth} image overlaps its footprint` : null,
      };
    });
    await trx('batch_tile').insert(
      tiles.map((t) => ({
        batch_id: batch.id,
        imagery_id: t.imagery_id,
        baseline_ids: t.baseline_ids,
        status: t.status,
        error_code: t.error_code,
        error_message: t.error_message,
      })),
    );
    return { batch: { ...batch, id: Number(batch.id) }, tiles };
  });
}

/** Put a finished batch's failed tiles back in the queue state (fresh baseline lookup) and reopen the batch. */
export async function reopenFailedTiles(
  db: Db,
  batchId: number,
): Promise<{ retried: BatchTileRow[]; stillFailed: BatchTileRow[]; round: number }> {
  return db.transaction(async (trx) => {
    const batch = await trx('batch').where({ id: batchId }).forUpdate().first();
    if (!batch) throw new NotFoundError(`batch ${batchId} does not exist`);
    if (!['completed_with_failures', 'failed'].includes(batch.status)) {
      throw new ConflictError(
        `batch ${batchId} is ${batch.status}; only a batch that finished with failed tiles (completed_with_failures or failed) can be retried`,
        { status: batch.status },
      );
    }
    await trx.raw('select pg_advisory_xact_lock(hashtext(?))', [`tuban-batch-${batch.month}`]);
    const active = await trx('batch').where({ month: batch.month }).whereIn('status', ['queued', 'running']).first();
    if (active)
      throw new ConflictError(`month ${batch.month} has batch ${active.id} running; retry after it ends`, {
        batchId: active.id,
      });
    const failed = (await batchTiles(trx, batchId)).filter((t) => t.status === 'failed');
    const pairs = await runSql<{ id: string; baseline_ids: string[] }>(trx, 'batch/pairs', {
      month: batch.month,
      baseline_month: batch.baseline_month,
    });
    const baselines = new Map(pairs.map((p) => [Number(p.id), p.baseline_ids.map(Number)]));
    const retried: BatchTileRow[] = [];
    const stillFailed: BatchTileRow[] = [];
    for (const t of failed) {
      const ids = baselines.get(t.imagery_id) ?? [];
      if (ids.length === 0) {
        stillFailed.push(t);
        continue;
      }
      await trx('batch_tile').where({ batch_id: batchId, imagery_id: t.imagery_id }).update({
        status: 'queued',
        error_code: null,
        error_message: null,
        baseline_ids: ids,
        updated_at: trx.fn.now(),
      });
      await trx('batch_part').where({ batch_id: batchId, imagery_id: t.imagery_id }).delete(); // made afresh when enqueued
      retried.push({ ...t, status: 'queued', baseline_ids: ids, error_code: null, error_message: null });
    }
    const round = Number(batch.params?.retryRound ?? 0) + 1;
    if (retried.length) {
      await trx('batch')
        .where({ id: batchId })
        .update({
          status: 'queued',
          finished_at: null,
          params: trx.raw("params || jsonb_build_object('retryRound', ?::int)", [round]),
        });
    }
    return { retried, stillFailed, round };
  });
}

/** The latest batch of a month, or null. */
export async function latestBatchOfMonth(db: Db, month: string): Promise<BatchRow | null> {
  const row = await db('batch').where({ month }).orderBy('id', 'desc').first();
  return row ? { ...row, id: Number(row.id) } : null;
}

export async function getBatch(db: Db, batchId: number): Promise<BatchRow> {
  const row = await db('batch').where({ id: batchId }).first();
  if (!row) throw new NotFoundError(`batch ${batchId} does not exist`);
  return { ...row, id: Number(row.id) };
}

function tileQuery(db: Db, batchId: number) {
  return db('batch_tile as t')
    .join('imagery as i', 'i.id', 't.imagery_id')
    .where('t.batch_id', batchId)
    .select('t.imagery_id', 'i.path', 't.baseline_ids', 't.status', 't.error_code', 't.error_message');
}

const toTileRow = (r: Record<string, any>): BatchTileRow =>
  ({ ...r, imagery_id: Number(r.imagery_id), baseline_ids: (r.baseline_ids ?? []).map(Number) }) as BatchTileRow;

export async function batchTiles(db: Db, batchId: number): Promise<BatchTileRow[]> {
  return (await tileQuery(db, batchId).orderBy('i.path')).map(toTileRow);
}

/** One tile of a batch (what each tile job needs), or null. */
export async function batchTile(db: Db, batchId: number, imageryId: number): Promise<BatchTileRow | null> {
  const row = await tileQuery(db, batchId).andWhere('t.imagery_id', imageryId).first();
  return row ? toTileRow(row) : null;
}

export async function updateTile(
  db: Db,
  batchId: number,
  imageryId: number,
  fields: Partial<{
    status: TileStatus;
    error_code: string | null;
    error_message: string | null;
    windows: number;
    polygons: number;
    timings: Record<string, number>;
  }>,
): Promise<void> {
  const { timings, ...rest } = fields;
  const update: Record<string, unknown> = { ...rest, updated_at: db.fn.now() };
  if (timings) update.timings = db.raw('timings || ?::jsonb', [JSON.stringify(timings)]);
  await db('batch_tile').where({ batch_id: batchId, imagery_id: imageryId }).update(update);
}

export async function setBatchStatus(db: Db, batchId: number, status: string): Promise<void> {
  // only an actual change writes: every part job calls this, and the batch row is shared by all workers
  await db('batch')
    .where({ id: batchId })
    .whereIn('status', ['queued', 'running'])
    .whereNot({ status })
    .update({ status });
}

export async function listPatches(db: Db, month: string, townCode?: string | null): Promise<Record<string, unknown>[]> {
  return runSql(db, 'queries/patches', { month, town_code: townCode ?? null });
}
