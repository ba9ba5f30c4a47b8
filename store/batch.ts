import type { Knex } from 'knex';
import type { Config } from '../config/env.ts';
import { ConflictError, NotFoundError } from '../core/errors.ts';
import { partGrid, type ScenePart } from '../pipeline/window.grid.ts';
import { regularise } from '../pipeline/regularise.ts';
import { runSql } from './sql.ts';
import { lockPatchNumbers } from './workflow.ts';
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
  perTown: { townCode: string; townName: string; newPatches: number; redetected: number; newAreaM2: number }[];
  /** Files of the month refused at registration (never part of a batch), with their reasons. */
  refusedFiles?: { path: string; code: string; reason: string }[];
  /** Milliseconds of the diff (candidates), re-detection matching and emit steps. */
  timings?: { diffMs: number; matchMs: number; emitMs: number };
}

export const previousMonth = (month: string): string => addMonths(month, -1);

/**
 * Create a batch and its tile rows. Tiles with no overlapping baseline image are failed at once
 * (reason `no_baseline`); the rest are queued. A month with a batch still queued or running is
 * refused, so two launches of the same month cannot race.
 */
export async function createBatch(
  db: Knex,
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
  db: Knex,
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
    const failed = (await batchTiles(trx as unknown as Knex, batchId)).filter((t) => t.status === 'failed');
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
export async function latestBatchOfMonth(db: Knex, month: string): Promise<BatchRow | null> {
  const row = await db('batch').where({ month }).orderBy('id', 'desc').first();
  return row ? { ...row, id: Number(row.id) } : null;
}

export async function getBatch(db: Knex, batchId: number): Promise<BatchRow> {
  const row = await db('batch').where({ id: batchId }).first();
  if (!row) throw new NotFoundError(`batch ${batchId} does not exist`);
  return { ...row, id: Number(row.id) };
}

function tileQuery(db: Knex, batchId: number) {
  return db('batch_tile as t')
    .join('imagery as i', 'i.id', 't.imagery_id')
    .where('t.batch_id', batchId)
    .select('t.imagery_id', 'i.path', 't.baseline_ids', 't.status', 't.error_code', 't.error_message');
}

const toTileRow = (r: Record<string, any>): BatchTileRow =>
  ({ ...r, imagery_id: Number(r.imagery_id), baseline_ids: (r.baseline_ids ?? []).map(Number) }) as BatchTileRow;

export async function batchTiles(db: Knex, batchId: number): Promise<BatchTileRow[]> {
  return (await tileQuery(db, batchId).orderBy('i.path')).map(toTileRow);
}

/** One tile of a batch (what each tile job needs), or null. */
export async function batchTile(db: Knex, batchId: number, imageryId: number): Promise<BatchTileRow | null> {
  const row = await tileQuery(db, batchId).andWhere('t.imagery_id', imageryId).first();
  return row ? toTileRow(row) : null;
}

export async function updateTile(
  db: Knex,
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

export async function setBatchStatus(db: Knex, batchId: number, status: string): Promise<void> {
  // only an actual change writes: every part job calls this, and the batch row is shared by all workers
  await db('batch')
    .where({ id: batchId })
    .whereIn('status', ['queued', 'running'])
    .whereNot({ status })
    .update({ status });
}

/**
 * Diff, match and emit for a finished batch, in one transaction (all or nothing). Running it
 * again for a completed batch changes nothing and returns the stored summary.
 */
export async function runDiff(
  db: Knex,
  config: Config,
  batchId: number,
  actor = 'batch',
  pause?: (point: 'emit' | 'commit') => Promise<void>,
): Promise<BatchSummary> {
  return db.transaction(async (trx) => {
    const batch = await trx('batch').where({ id: batchId }).forUpdate().first();
    if (!batch) throw new NotFoundError(`batch ${batchId} does not exist`);
    if (batch.status === 'completed' || batch.status === 'completed_with_failures')
      return batch.summary as BatchSummary;
    const dates = await trx('imagery as i')
      .join('batch_tile as t', 't.imagery_id', 'i.id')
      .where('t.batch_id', batchId)
      .max({ d: 'i.acquired_on' });
    const imageryDate = dates[0]?.d ? new Date(dates[0].d).toISOString().slice(0, 10) : `${batch.month}-01`;
    await trx('batch_candidate').where({ batch_id: batchId }).delete();
    const lap = (() => {
      let t = performance.now();
      return () => {
        const now = performance.now();
        const ms = Math.round(now - t);
        t = now;
        return ms;
      };
    })();
    await runSql(trx, 'diff/candidates', {
      batch_id: batchId,
      imagery_date: imageryDate,
      legal_buffer_m: config.TUBAN_LEGAL_BUFFER_M,
      opening_m: config.TUBAN_OPENING_M,
      seam_eps_m: config.TUBAN_GSD_M / 2,
      min_area_m2: config.TUBAN_MIN_AREA_M2,
      simplify_m: config.TUBAN_SIMPLIFY_M,
      default_district: config.TUBAN_DISTRICT_CODE,
    });
    if (batch.params?.regularise)
      await regulariseCandidates(
        trx as unknown as Knex,
        batchId,
        config.TUBAN_GSD_M,
        Number(batch.params.regulariseMaxChange ?? 0.1),
      );
    const diffMs = lap();
    await runSql(trx, 'diff/match', { batch_id: batchId, month: batch.month, match_overlap: 0.3 });
    const matchMs = lap();
    await lockPatchNumbers(trx as unknown as Knex, batch.month);
    await pause?.('emit');
    await runSql(trx, 'diff/emit', { batch_id: batchId, month: batch.month, actor });
    const emitMs = lap();
    const tiles = await batchTiles(trx as unknown as Knex, batchId);
    const failed = tiles.filter((t) => t.status === 'failed');
    const status =
      failed.length === 0 ? 'completed' : failed.length === tiles.length ? 'failed' : 'completed_with_failures';
    const summary = {
      ...(await composeSummary(trx as unknown as Knex, { ...batch, id: batchId, status }, tiles)),
      timings: { diffMs, matchMs, emitMs },
    };
    await pause?.('commit');
    await trx('batch')
      .where({ id: batchId })
      .update({ status, summary: JSON.stringify(summary), finished_at: trx.fn.now() });
    return summary;
  });
}

async function composeSummary(db: Knex, batch: BatchRow, tiles: BatchTileRow[]): Promise<BatchSummary> {
  const failed = tiles.filter((t) => t.status === 'failed');
  const [{ n: changePolygons }] = await db('change_polygon').where({ batch_id: batch.id }).count({ n: '*' });
  const [{ n: candidates }] = await db('batch_candidate').where({ batch_id: batch.id }).count({ n: '*' });
  const towns = await runSql<{
    town_code: string;
    town_name: string;
    new_patches: string;
    redetected: string;
    new_area_m2: number;
  }>(db, 'batch/summary', { batch_id: batch.id });
  const perTown = towns.map((t) => ({
    townCode: t.town_code,
    townName: t.town_name,
    newPatches: Number(t.new_patches),
    redetected: Number(t.redetected),
    newAreaM2: Number(t.new_area_m2),
  }));
  return {
    batchId: batch.id,
    month: batch.month,
    baselineMonth: batch.baseline_month,
    status: batch.status,
    model: { name: batch.model_name, version: batch.model_version },
    tiles: { total: tiles.length, ok: tiles.length - failed.length, failed: failed.length },
    failedTiles: failed.map((t) => ({ path: t.path, code: t.error_code, reason: t.error_message })),
    refusedFiles: await db('imagery_refusal')
      .where({ month: batch.month })
      .orderBy('path')
      .select('path', 'code', 'reason'),
    changePolygons: Number(changePolygons),
    candidates: Number(candidates),
    patches: {
      new: perTown.reduce((s, t) => s + t.newPatches, 0),
      redetected: perTown.reduce((s, t) => s + t.redetected, 0),
    },
    perTown,
  };
}

export async function listPatches(
  db: Knex,
  month: string,
  townCode?: string | null,
): Promise<Record<string, unknown>[]> {
  return runSql(db, 'queries/patches', { month, town_code: townCode ?? null });
}

// ---------------------------------------------------------------------------------------------
// Parts: each tile (scene) is processed as window ranges with their own jobs; the tile's row is
// rolled up from its parts.

export const DEFAULT_PART_PX = 3072;
export const partPxOf = (params: Record<string, unknown> | null | undefined): number =>
  Number(params?.partPx ?? DEFAULT_PART_PX);

export interface BatchPartRow extends ScenePart {
  imagery_id: number;
  status: TileStatus;
}

/** Create the part rows of tiles that have none yet (idempotent; called by every enqueue: launch, retry, resume). */
export async function ensureParts(db: Knex, batchId: number, imageryIds: number[], partPx: number): Promise<void> {
  if (!imageryIds.length) return;
  const sizes = await db('imagery').whereIn('id', imageryIds).select('id', 'width_px', 'height_px');
  const rows = sizes.flatMap((i) =>
    partGrid(Number(i.width_px), Number(i.height_px), partPx).map((p) => ({
      batch_id: batchId,
      imagery_id: Number(i.id),
      ...p,
      status: 'queued',
    })),
  );
  for (let k = 0; k < rows.length; k += 500)
    await db('batch_part')
      .insert(rows.slice(k, k + 500))
      .onConflict(['batch_id', 'imagery_id', 'part'])
      .ignore();
}

const partColumns = ['imagery_id', 'part', 'x', 'y', 'width', 'height', 'status'] as const;
const toPartRow = (r: Record<string, any>): BatchPartRow =>
  ({ ...r, imagery_id: Number(r.imagery_id) }) as BatchPartRow;

/** Parts of a batch's tiles, optionally only those not yet vectorized. */
export async function batchParts(
  db: Knex,
  batchId: number,
  opts: { imageryIds?: number[]; unfinished?: boolean } = {},
): Promise<BatchPartRow[]> {
  const q = db('batch_part')
    .where({ batch_id: batchId })
    .orderBy(['imagery_id', 'part'])
    .select(...partColumns);
  if (opts.imageryIds) q.whereIn('imagery_id', opts.imageryIds);
  if (opts.unfinished) q.whereNotIn('status', ['vectorized', 'failed']);
  return (await q).map(toPartRow);
}

type PartFields = Partial<{
  status: TileStatus;
  error_code: string | null;
  error_message: string | null;
  windows: number;
  polygons: number;
  valid_px: number;
  timings: Record<string, number>;
}>;

/**
 * Update a part and roll its tile up, in the caller's transaction, in two statements: the first
 * locks the tile's row and records the part (sql/batch/update_part.sql), so two parts finishing at
 * once roll up one after the other; the second, with a snapshot taken after the lock, sums the
 * parts into the tile (sql/batch/rollup_tile.sql) and so sees both.
 */
export async function updatePartAndTile(
  trx: Knex,
  batchId: number,
  imageryId: number,
  part: number,
  fields: PartFields,
): Promise<TileStatus> {
  const params = {
    batch_id: batchId,
    imagery_id: imageryId,
    part,
    status: fields.status ?? 'queued',
    error_code: fields.error_code ?? null,
    error_message: fields.error_message ?? null,
    windows: fields.windows ?? null,
    polygons: fields.polygons ?? null,
    valid_px: fields.valid_px ?? null,
    timings: JSON.stringify(fields.timings ?? {}),
  };
  const [locked] = await runSql<{ tile_status: TileStatus | null; parts: number }>(trx, 'batch/update_part', params);
  if (!locked?.tile_status) throw new Error(`batch ${batchId} has no tile for imagery ${imageryId}`);
  if (!locked.parts) throw new Error(`batch ${batchId} tile ${imageryId} has no part ${part}`);
  const [rolled] = await runSql<{ status: TileStatus }>(trx, 'batch/rollup_tile', {
    batch_id: batchId,
    imagery_id: imageryId,
    timings: params.timings,
  });
  return rolled?.status ?? 'failed';
}

/**
 * Building-aware outlines for the batch's candidates (when the batch was run with regularise):
 * each single-polygon candidate is redrawn as a rectangle or at right angles when that changes
 * its area by at most maxAreaChange; the method and the area before are kept on the patch.
 */
async function regulariseCandidates(db: Knex, batchId: number, gsdM: number, maxAreaChange: number): Promise<void> {
  const rows = await db('batch_candidate')
    .where({ batch_id: batchId })
    .select('seq', db.raw('ST_AsGeoJSON(geom, 4)::json as g'));
  const items: { seq: number; geojson: string; method: string }[] = [];
  for (const r of rows) {
    const g = r.g as { type: string; coordinates: number[][][][] };
    if (g.type !== 'MultiPolygon' || g.coordinates.length !== 1) continue;
    const out = regularise(g.coordinates[0], { gsdM, maxAreaChange });
    if (!out.method) continue;
    items.push({
      seq: Number(r.seq),
      geojson: JSON.stringify({ type: 'Polygon', coordinates: out.rings }),
      method: out.method,
    });
  }
  // one statement per thousand candidates, not one per candidate
  for (let i = 0; i < items.length; i += 1000)
    await runSql(db, 'diff/regularise', { batch_id: batchId, items: JSON.stringify(items.slice(i, i + 1000)) });
}
