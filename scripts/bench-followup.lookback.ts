/**
 * The 回头看 half of scripts/bench-followup.ts, in the classify run's schema: every patch of the month
 * ordered demolished through the workflow as the bureau would do it; the next month staged with half of
 * them demolished; its batch; the judgements scored against what was staged.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { worldToPixel } from '../pipeline/geotransform.ts';
import { writeGeoTiff } from '../pipeline/io/geotiff.write.ts';
import { rasterisePolygons } from '../pipeline/lookback.judge.ts';
import { CURRENT_MONTH, UTM_14N } from './bench-real.plan.ts';
import type { BenchSchema } from './bench-real.setup.ts';
import { nextMonth, seedOf } from './bench-followup.plan.ts';
import type { FollowupResult } from './bench-followup.report.ts';
import type { SceneCases } from './bench-followup.ts';

/** The month after CURRENT_MONTH, in which the demolitions are seen. */
export const NEXT_MONTH = '2018-02';
/** Demolished footprints are cleared this far beyond the patch outline (m): a demolition takes the whole structure. */
const CLEAR_M = 1;

/** Which patches are demolished in the next month, and which were reported rectified: by the code's hash, half and half. */
export function staged(code: string): { demolished: boolean; reported: boolean } {
  const h = seedOf(code);
  return { demolished: (h & 1) === 0, reported: (h & 2) === 0 };
}

export async function lookbackRound(
  schema: BenchSchema,
  scenes: SceneCases[],
  batchId: number,
  /** Patches on a real structure (a change of the truth): only their judgements can be right or wrong. */
  onStructure: Set<string>,
  km2: number,
  dir: string,
  say: (line: string) => void,
): Promise<NonNullable<FollowupResult['lookback']>> {
  const { db, config } = schema;
  const { cmdBatchRun } = await import('../cli/commands.ts');
  const { createLogger } = await import('../core/log.ts');
  const { registerImagery } = await import('../imagery/register.ts');
  const { createUser } = await import('../store/users.ts');
  const { applyAction } = await import('../store/workflow.ts');
  const { addEvidence } = await import('../store/evidence.ts');
  const { objectStore } = await import('../store/objects.ts');
  const { supervisorBoard } = await import('../store/reports.ts');
  const { workflowEnv } = await import('../workflow/env.ts');
  const { JPEG } = await import('../test/helpers/hostile.ts');
  const { TOWN } = await import('./bench-real.plan.ts');

  // the bureau's month: every patch ordered demolished; a quarter reported and closed, a quarter reported falsely
  const env = { ...workflowEnv(config), today: () => '2025-03-03' };
  const ana = await createUser(db, { username: 'ana', role: 'analyst' });
  const town = await createUser(db, { username: 'town', role: 'town', townCode: TOWN.code });
  const sup = await createUser(db, { username: 'sup', role: 'supervisor' });
  const patches = await db('patch').where({ batch_id: batchId }).orderBy('code').select('code');
  say(`ordering ${patches.length} patches demolished through the workflow`);
  const t0 = performance.now();
  const store = objectStore(config);
  for (const { code } of patches) {
    await applyAction(db, env, ana, code, 'dispatch', {});
    await addEvidence(db, store, 1 << 20, town, code, { filename: 'site.jpg', bytes: JPEG }); // the verdict's photo
    await applyAction(db, env, town, code, 'verify', { result: 'illegal', violation: 'construction' });
    await applyAction(db, env, town, code, 'rectify', { measure: 'demolish' });
    const s = staged(code);
    if (!s.reported) continue;
    await addEvidence(db, store, 1 << 20, town, code, { filename: 'done.jpg', bytes: JPEG });
    await applyAction(db, env, town, code, 'report_rectified', {});
    if (s.demolished) await applyAction(db, env, sup, code, 'close', {});
  }
  const workflowS = (performance.now() - t0) / 1000;

  // the next month: the demolished patches' ground back, everything in another day's light
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  const outlines = await db.raw(
    `select code, ST_AsGeoJSON(ST_Buffer(geom, ?), 3)::json as g from patch where batch_id = ?`,
    [CLEAR_M, batchId],
  );
  const demolished = outlines.rows.filter((r: { code: string }) => staged(r.code).demolished);
  for (const s of scenes) {
    const polys = demolished.flatMap(
      (r: { g: { type: string; coordinates: unknown } }) =>
        (r.g.type === 'Polygon' ? [r.g.coordinates] : r.g.coordinates) as number[][][][],
    );
    const px = polys.map((poly: number[][][]) =>
      poly.map((ring) =>
        ring.map(([x, y]) => {
          const { col, row } = worldToPixel(s.geoTransform, x, y);
          return [col, row];
        }),
      ),
    );
    const mask = rasterisePolygons(px, s.widthPx, s.heightPx);
    const file = join(dir, s.pair.image.replace(/\.png$/i, '.tif'));
    writeGeoTiff(file, {
      widthPx: s.widthPx,
      heightPx: s.heightPx,
      samples: nextMonth(s.before, s.after, mask, s.widthPx, s.heightPx, 3, seedOf(s.pair.image) ^ 0x5eed),
      bands: 3,
      crs: UTM_14N,
      geoTransform: s.geoTransform,
      nodata: 0,
    });
    files.push(file);
  }
  const reg = await registerImagery(db, config, NEXT_MONTH, files, '2018-07-01');
  if (reg.refused.length) throw new Error(`imagery of ${NEXT_MONTH} refused: ${JSON.stringify(reg.refused)}`);

  say(`running ${NEXT_MONTH} against ${CURRENT_MONTH}: ${demolished.length} of ${patches.length} demolished`);
  const t1 = performance.now();
  const r = await cmdBatchRun(db, config, createLogger(process.env.BENCH_LOG === 'info' ? 'info' : 'warn'), {
    month: NEXT_MONTH,
    baseline: CURRENT_MONTH,
    wait: true,
    inProcessWorkers: true,
  });
  const wallS = (performance.now() - t1) / 1000;
  const summary = r.summary!;

  const checks = await db('patch_imagery_check as c')
    .join('patch as p', 'p.id', 'c.patch_id')
    .where('c.batch_id', summary.batchId)
    .select('p.code', 'c.result', 'c.score');
  const evidence = (
    await db('patch_event as e')
      .join('patch as p', 'p.id', 'e.patch_id')
      .where({ 'e.type': 'imagery_check' })
      .select('p.code', 'e.detail')
  ).map((e) => ({
    code: e.code,
    demolished: staged(e.code).demolished,
    onStructure: onStructure.has(e.code),
    result: e.detail.result,
    ...e.detail.evidence,
  }));
  // a patch on no structure (a false alarm of the first month) has nothing to demolish: scored apart
  const confusion: Record<string, Record<string, number>> = { demolished: {}, standing: {}, no_structure: {} };
  let right = 0,
    judged = 0;
  for (const c of checks) {
    const truth = !onStructure.has(c.code) ? 'no_structure' : staged(c.code).demolished ? 'demolished' : 'standing';
    if (truth === 'no_structure') {
      confusion[truth][c.result] = (confusion[truth][c.result] ?? 0) + 1;
      continue;
    }
    judged++;
    confusion[truth][c.result] = (confusion[truth][c.result] ?? 0) + 1;
    if ((truth === 'demolished' && c.result === 'gone') || (truth === 'standing' && c.result === 'standing')) right++;
  }
  // new patches of the next month, and those of them on a demolished patch
  const [fresh] = (
    await db.raw(
      `select count(*)::int as n,
              (count(*) filter (where exists (select 1 from patch o where o.batch_id = ? and o.code = any(?) and ST_Intersects(o.geom, p.geom))))::int as on_demolished
       from patch p where p.month = ?`,
      [batchId, demolished.map((d: { code: string }) => d.code), NEXT_MONTH],
    )
  ).rows;
  const board = await supervisorBoard(db, env, sup, 3);
  const listed = (k: 'reported_standing' | 'gone_unreported') => board.towns.flatMap((t) => t[k].map((i) => i.code));
  const expect = (f: (s: { demolished: boolean; reported: boolean }) => boolean) =>
    patches.map((p) => p.code).filter((c) => f(staged(c)));
  const falseReports = new Set(expect((s) => !s.demolished && s.reported));
  const unreported = new Set(expect((s) => s.demolished && !s.reported));
  const hit = (got: string[], want: Set<string>) => ({
    listed: got.length,
    staged: want.size,
    right: got.filter((c) => want.has(c)).length,
  });
  return {
    patches: patches.length,
    demolished: demolished.length,
    workflowS,
    judged,
    right,
    confusion,
    newPatches: fresh.n,
    newOnDemolished: fresh.on_demolished,
    demolitionsSeen: summary.demolitions ?? 0,
    board: {
      reportedStanding: hit(listed('reported_standing'), falseReports),
      goneUnreported: hit(listed('gone_unreported'), unreported),
    },
    wallS,
    lookbackS: (summary.timings?.lookbackMs ?? 0) / 1000,
    km2,
    km2PerHPerCore: km2 / (wallS / 3600) / (await import('node:os')).cpus().length,
    params: (await db('batch').where({ id: summary.batchId }).first()).params.lookback,
    month: NEXT_MONTH,
    reference: CURRENT_MONTH,
    evidence,
  };
}
