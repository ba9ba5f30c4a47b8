import type { Knex } from 'knex';
import type { Db } from './db.ts';
import { isEmbedded, type Config } from '../config/env.ts';
import { NotFoundError, TransientError } from '../core/errors.ts';
import { StageTimer } from '../core/log.ts';
import { regularise } from '../pipeline/regularise.ts';
import { LOOKBACK_RESULTS, type LookbackResult } from '../pipeline/lookback.judge.ts';
import { BUILDING_RELATIONS, type BuildingRelation } from '../workflow/lifecycle.ts';
import { runSql } from './sql.ts';
import { lockPatchNumbers } from './patch.row.ts';
import { batchTiles, type BatchParams, type BatchRow, type BatchSummary, type BatchTileRow } from './batch.ts';

/**
 * A candidate is the same building as an earlier patch when their overlap covers at least this share of
 * the smaller of the two (sql/diff/match.sql): a patch that grew or shrank between months is still matched.
 */
export const MATCH_OVERLAP = 0.3;

/**
 * Diff, match and emit for a finished batch, in stages that each commit on their own (a province's
 * month is too much for one transaction): the candidates (traced, merged, made legal, attributed,
 * matched, 回头看 recorded), then each district's patches numbered and written, then the batch closed
 * with its summary. On PostgreSQL the candidates are worked out in TUBAN_DIFF_PARALLEL slices on
 * connections of their own and as many districts are written at once (one core each: a province's
 * 51,000 change polygons took 19 s on one connection, 12 s on two). Started again after a failure, it goes on where the last one stopped (the
 * candidates of this round are kept, a district already written is not written twice); for a
 * completed batch it changes nothing and returns the stored summary.
 */
export async function runDiff(
  db: Knex,
  config: Config,
  batchId: number,
  actor = 'batch',
  pause?: (point: DiffPoint) => Promise<void>,
  lookback?: LookbackOutcome,
): Promise<BatchSummary> {
  // The parts' polygons have just been stored, and autovacuum may not have seen them: planned on the
  // statistics of an emptier table, the seam check probed the whole batch for each polygon (207 s for a
  // province's 51,000). ANALYZE samples a fixed number of rows, so it costs the same at any size; it runs
  // outside the diff's transaction, which would hold its lock (and so every other diff's ANALYZE) to the
  // end. A role that does not own the table is skipped with a warning, not refused.
  await db.raw('analyze change_polygon');
  const parallel = isEmbedded(config) ? 1 : config.TUBAN_DIFF_PARALLEL;
  const staged = await db.transaction(async (trx) => {
    // NO KEY UPDATE, not UPDATE: the candidates' slices insert rows that reference the batch from
    // connections of their own, and their foreign-key checks (KEY SHARE) would wait for this transaction,
    // which waits for them. Another diff of the batch still waits here (FOR UPDATE and NO KEY UPDATE conflict).
    const batch = await trx('batch').where({ id: batchId }).forNoKeyUpdate().first();
    if (!batch) throw new NotFoundError(`batch ${batchId} does not exist`);
    if (batch.status === 'completed' || batch.status === 'completed_with_failures')
      return { done: batch.summary as BatchSummary };
    const round = Number((batch.params as Partial<BatchParams> | null)?.retryRound ?? 0);
    if (batch.candidates_round === round) return { batch, timings: batch.candidates_timings as DiffTimings };
    const timings = await stageCandidates(db, trx, config, batch, actor, lookback, parallel, pause);
    await trx('batch')
      .where({ id: batchId })
      .update({ candidates_round: round, candidates_timings: JSON.stringify(timings) });
    return { batch, timings, fresh: true };
  });
  if ('done' in staged) return staged.done as BatchSummary;
  const { batch, timings } = staged;
  // the districts' emits read the candidates by district: planned on their statistics as they are now,
  // not on an empty table's (a fresh province's emits took 179 s without them, 5 s with)
  if ('fresh' in staged) await db.raw('analyze batch_candidate');

  const timer = new StageTimer();
  const districts = (
    await db('batch_candidate')
      .where({ batch_id: batchId, emitted: false })
      .distinct('district_code')
      .orderBy('district_code')
  ).map((r) => r.district_code as string);
  // districts number their patches apart, so `parallel` of them are written at once
  await inTurns(districts, parallel, (district) =>
    db.transaction(async (trx) => {
      await lockPatchNumbers(trx, batch.month, district);
      // written meanwhile by another worker that took the job over: nothing left to do here
      const left = await trx('batch_candidate')
        .where({ batch_id: batchId, district_code: district, emitted: false })
        .first('seq');
      if (!left) return;
      await trx.raw('set local jit = off');
      await pause?.('emit');
      await runSql(trx, 'diff/emit', { batch_id: batchId, month: batch.month, actor, district_code: district });
      await trx('batch_candidate').where({ batch_id: batchId, district_code: district }).update({ emitted: true });
    }),
  );
  const emitMs = timer.lap('emit');

  return db.transaction(async (trx) => {
    const again = await trx('batch').where({ id: batchId }).forUpdate().first();
    if (again.status === 'completed' || again.status === 'completed_with_failures')
      return again.summary as BatchSummary;
    const tiles = await batchTiles(trx, batchId);
    const failed = tiles.filter((t) => t.status === 'failed');
    const status =
      failed.length === 0 ? 'completed' : failed.length === tiles.length ? 'failed' : 'completed_with_failures';
    const summary = {
      ...(await composeSummary(trx, { ...again, id: batchId, status }, tiles)),
      timings: {
        diffMs: timings.diffMs,
        matchMs: timings.matchMs,
        emitMs,
        ...(timings.lookbackMs !== undefined ? { lookbackMs: timings.lookbackMs } : {}),
      },
    };
    await pause?.('commit');
    await trx('batch')
      .where({ id: batchId })
      // clock_timestamp(): now() is when this transaction began
      .update({ status, summary: JSON.stringify(summary), finished_at: trx.raw('clock_timestamp()') });
    return summary;
  });
}

/**
 * The advisory lock a batch's candidate slices hold shared and the delete of its candidates exclusive
 * (keyed by schema and batch id: schemas share the database's advisory locks).
 */
const SLICE_LOCK = `hashtext('tuban-diff-slices-' || current_schema() || '-' || ?::bigint)`;

/** Settings for the diff's statements, for the transaction given. */
async function tuneForDiff(trx: Knex.Transaction): Promise<void> {
  // PostgreSQL's JIT compiles the diff's statements for about 60 ms each on the bench's real scenes
  // (their cost estimates are high) to save less than that: off for this transaction
  await trx.raw('set local jit = off');
  // the diff sorts a province's outlines a few times: in memory, not in files (4 MB by default)
  await trx.raw(`set local work_mem = '64MB'`);
}

/**
 * Runs fn on every item, at most n at a time; when one fails, waits for those already started (their
 * transactions end either way) and then throws the first failure.
 */
async function inTurns<T>(items: T[], n: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const failures: unknown[] = [];
  const lane = async () => {
    while (next < items.length && failures.length === 0) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (err) {
        failures.push(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, lane));
  if (failures.length > 0) throw failures[0];
}

/**
 * Where a diff can be held or stopped (tests, fault injection): `slice` when a slice of the candidates is
 * written but not committed, `emit` inside a district's transaction before its patches are written,
 * `commit` before the batch is closed.
 */
export type DiffPoint = 'slice' | 'emit' | 'commit';

/** How long the candidates' stages took (ms), kept with them for the summary of a diff that resumed. */
interface DiffTimings {
  diffMs: number;
  matchMs: number;
  lookbackMs?: number;
}

/**
 * The batch's candidates, made afresh: traced and merged across seams, legal parts removed, attributed
 * (relation, town, grid, zones), regularised if asked, 回头看's judgements recorded, and each matched
 * to the earlier patch it shows again.
 */
async function stageCandidates(
  db: Knex,
  trx: Knex.Transaction,
  config: Config,
  batch: BatchRow,
  actor: string,
  lookback: LookbackOutcome | undefined,
  parallel: number,
  pause?: (point: DiffPoint) => Promise<void>,
): Promise<DiffTimings> {
  const batchId = batch.id;
  const dates = await trx('imagery as i')
    .join('batch_tile as t', 't.imagery_id', 'i.id')
    .where('t.batch_id', batchId)
    .max({ d: 'i.acquired_on' });
  const imageryDate = dates[0]?.d ? new Date(dates[0].d).toISOString().slice(0, 10) : `${batch.month}-01`;
  const timer = new StageTimer();
  const params = (batch.params ?? {}) as Partial<BatchParams>;
  const floor = Number(params.minMeanProb ?? 0);
  const candidates = {
    batch_id: batchId,
    imagery_date: imageryDate,
    legal_buffer_m: config.TUBAN_LEGAL_BUFFER_M,
    opening_m: config.TUBAN_OPENING_M,
    seam_eps_m: config.TUBAN_GSD_M / 2,
    min_area_m2: config.TUBAN_MIN_AREA_M2,
    min_mean_prob: floor,
    min_mean_prob_extension: Number(params.minMeanProbByRelation?.extension ?? floor),
    min_mean_prob_on_building: Number(params.minMeanProbByRelation?.on_building ?? floor),
    // a batch launched before registered buildings were classed has none of these: today's defaults
    building_policy: params.buildingPolicy ?? config.TUBAN_BUILDING_POLICY,
    on_building_share: Number(params.onBuildingShare ?? config.TUBAN_ON_BUILDING_SHARE),
    touch_m: Number(params.buildingTouchM ?? config.TUBAN_BUILDING_TOUCH_M),
    simplify_m: config.TUBAN_SIMPLIFY_M,
    default_district: config.TUBAN_DISTRICT_CODE,
    slices: parallel,
  };
  if (parallel === 1) {
    await trx('batch_candidate').where({ batch_id: batchId }).delete();
    await tuneForDiff(trx);
    await runSql(trx, 'diff/candidates', { ...candidates, slice: 0 });
    await pause?.('slice');
  } else {
    // an earlier round's candidates (or a stopped run's slices) go first, committed, so that no slice's
    // insert waits on this transaction; each slice commits on its own connection, and all have ended
    // before this transaction does. A slice of an attempt whose own connection died may still be running
    // (its process alive, the batch's lock released with that connection): every slice holds the batch's
    // slice lock shared while it works, so this delete waits for it to end and removes what it committed.
    await db.transaction(async (t) => {
      await t.raw(`select pg_advisory_xact_lock(${SLICE_LOCK})`, [batchId]);
      await t('batch_candidate').where({ batch_id: batchId }).delete();
    });
    // every slice reads the batch's polygons, tiles and layers as they were at one moment (this one), so a
    // tile or a layer that changes meanwhile cannot make two slices cluster the seams differently
    const { snapshot, xact } = (
      await trx.raw('select pg_export_snapshot() as snapshot, pg_current_xact_id()::text as xact')
    ).rows[0] as { snapshot: string; xact: string };
    if (!/^[0-9A-F-]+$/i.test(snapshot)) throw new Error(`unexpected snapshot id ${snapshot}`);
    await inTurns(
      Array.from({ length: parallel }, (_, slice) => slice),
      parallel,
      (slice) =>
        db.transaction(async (t) => {
          await t.raw('set transaction isolation level repeatable read');
          await t.raw(`set transaction snapshot '${snapshot}'`);
          // the lock first, then this diff's transaction still running: a next attempt's delete (above) either
          // waits for this slice or came after that transaction ended, and then the slice stops here
          await t.raw(`select pg_advisory_xact_lock_shared(${SLICE_LOCK})`, [batchId]);
          const { status } = (await t.raw('select pg_xact_status(?::xid8) as status', [xact])).rows[0];
          if (status !== 'in progress')
            throw new TransientError(`the diff of batch ${batchId} ended (${status}) before its slice ${slice} began`);
          await tuneForDiff(t);
          await runSql(t, 'diff/candidates', { ...candidates, slice });
          await pause?.('slice');
        }),
    );
  }
  await tuneForDiff(trx);
  await runSql(trx, 'diff/number', { batch_id: batchId });
  if (params.regularise)
    await regulariseCandidates(trx, batchId, config.TUBAN_GSD_M, Number(params.regulariseMaxChange ?? 0.1));
  const diffMs = timer.lap('diff');
  // 回头看's judgements first: a candidate on a structure judged gone is its demolition (match.sql)
  if (lookback?.checks.length)
    await runSql(trx, 'lookback/record', {
      batch_id: batchId,
      month: batch.month,
      model_name: lookback.modelName,
      model_version: lookback.modelVersion,
      actor,
      checks: JSON.stringify(lookback.checks),
    });
  await runSql(trx, 'diff/match', { batch_id: batchId, month: batch.month, match_overlap: MATCH_OVERLAP });
  const matchMs = timer.lap('match');
  return { diffMs, matchMs, ...(lookback ? { lookbackMs: lookback.ms } : {}) };
}

async function composeSummary(db: Db, batch: BatchRow, tiles: BatchTileRow[]): Promise<BatchSummary> {
  const failed = tiles.filter((t) => t.status === 'failed');
  const [{ n: changePolygons }] = await db('change_polygon').where({ batch_id: batch.id }).count({ n: '*' });
  const [{ n: candidates }] = await db('batch_candidate').where({ batch_id: batch.id }).count({ n: '*' });
  const [{ n: demolitions }] = await db('batch_candidate')
    .where({ batch_id: batch.id })
    .whereNotNull('demolition_of')
    .count({ n: '*' });
  const judged = await db('patch_imagery_check')
    .where({ batch_id: batch.id })
    .groupBy('result')
    .select('result', db.raw('count(*)::int as n'));
  const relations = await db('patch')
    .where({ batch_id: batch.id })
    .groupBy('building_relation')
    .select('building_relation', db.raw('count(*)::int as n'));
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
    newByRelation: Object.fromEntries(
      BUILDING_RELATIONS.map((r) => [r, relations.find((x) => x.building_relation === r)?.n ?? 0]),
    ) as Record<BuildingRelation, number>,
    demolitions: Number(demolitions),
    lookback: Object.fromEntries(
      LOOKBACK_RESULTS.map((r) => [r, judged.find((x) => x.result === r)?.n ?? 0]),
    ) as Record<LookbackResult, number>,
    perTown,
  };
}

/** What 回头看 judged for the batch before its diff (workers/lookback.ts), for the diff to record. */
export interface LookbackOutcome {
  checks: {
    patch_id: number;
    result: string;
    score: number | null;
    valid_share: number;
    reason: string | null;
    evidence?: Record<string, number | null>;
  }[];
  modelName: string;
  modelVersion: string;
  ms: number;
}

/**
 * Building-aware outlines for the batch's candidates (when the batch was run with regularise):
 * each single-polygon candidate is redrawn as a rectangle or at right angles when that changes
 * its area by at most maxAreaChange; the method and the area before are kept on the patch.
 */
async function regulariseCandidates(db: Db, batchId: number, gsdM: number, maxAreaChange: number): Promise<void> {
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
