/**
 * Benchmark: the follow-through from imagery (issue 28) on real held-out scenes — the LEVIR-CD
 * validation pairs of the model's split, warped to UTM 14N at 0.5 m as scripts/bench-real.ts does.
 *
 * 1. Registered buildings. Every labelled new building becomes one case (bench-followup.plan.ts):
 *    new, under a valid permit, an extension of a registered building, a rebuild on a registered
 *    footprint (each with the register alone, and with the earlier month's imagery showing the
 *    registered part or an older roof), or a registered building that did not change. The month is
 *    run three times, each in a schema of its own: without the building and permit layers (the
 *    detector alone), with TUBAN_BUILDING_POLICY=subtract (registered buildings erased, as before), and
 *    with the default classify. Per case: buildings found, and the relation right among those.
 * 2. 回头看. In the classify run, every patch is dispatched, verified illegal and ordered demolished;
 *    half of them (by their code) are demolished in the next month's imagery (the earlier month's
 *    ground back inside the outline grown by 1 m, the whole image in another day's light and noise), a
 *    quarter reported rectified and closed, a quarter reported rectified falsely. The next month's
 *    batch judges each; printed: judgements right, new patches (none should come from the demolitions),
 *    the board's two lists against what was staged, and what the look-back cost.
 *
 *   npx tsx scripts/bench-followup.ts [--model DIR] [--images a.png,b.png] [--split FILE] [--data DIR] [--json] [--keep]
 *
 * Settings in the environment (TUBAN_ON_BUILDING_SHARE, TUBAN_MIN_MEAN_PROB_ON_BUILDING,
 * TUBAN_LOOKBACK_GONE_AT, …) reach every run. Not a test: the figures depend on the model.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BadInputError } from '../core/errors.ts';
import type { GeoTransform } from '../pipeline/geotransform.ts';
import { vectorizeRaster } from '../pipeline/vectorize.ts';
import {
  BASELINE_MONTH,
  CURRENT_MONTH,
  UTM_14N,
  dataLayout,
  footprintsParam,
  planPairs,
  planScenes,
} from './bench-real.plan.ts';
import type { RealPair } from './bench-real.plan.ts';
import { openBenchSchema, warpScenes } from './bench-real.setup.ts';
import { CASES, EXPECTED_RELATION, planCases, seedOf, type CaseKind, type CaseMasks } from './bench-followup.plan.ts';
import {
  followupText,
  mergeLookback,
  mergeRuns,
  type FollowupResult,
  type PolicyRun,
} from './bench-followup.report.ts';
import { lookbackRound } from './bench-followup.lookback.ts';
import { standingRoofEvidence } from './bench-followup.roofs.ts';
import { judgeFootprint, type LookbackThresholds } from '../pipeline/lookback.judge.ts';

const USAGE = `npx tsx scripts/bench-followup.ts [options]
  --model DIR          change model (default TUBAN_MODEL_DIR, else models/siam-unet-lite)
  --images a.png,b.png LEVIR-CD images to run (default: the split file's validation images)
  --split FILE         split file naming the validation images (default models/siam-unet-lite/split.json)
  --data DIR           data root holding change-pairs/levir-cd-t38 and geotiff/levir-cd-geo (default ../shared/data from the repository)
  --deals N            deal the buildings into cases N times (other shuffles), each its own runs, the figures summed (default 1)
  --json               print one JSON object instead of the text report
  --keep               keep the schemas, the Redis keys and the GeoTIFFs`;

let values: {
  model?: string;
  images?: string;
  split?: string;
  data?: string;
  deals?: string;
  json?: boolean;
  keep?: boolean;
  help?: boolean;
};
const argv = process.argv.slice(2);
try {
  ({ values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      images: { type: 'string' },
      split: { type: 'string' },
      data: { type: 'string' },
      deals: { type: 'string' },
      json: { type: 'boolean' },
      keep: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  }));
} catch (err) {
  console.error(`${(err as Error).message}\n${USAGE}`);
  process.exit(2);
}
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}

const deals = Number(values.deals ?? 1);
if (!Number.isInteger(deals) || deals < 1 || deals > 20) {
  console.error(`--deals ${values.deals}: expected a whole number 1–20\n${USAGE}`);
  process.exit(2);
}
const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dataDir = resolve(values.data ?? join(repo, '..', 'shared', 'data'));
const splitFile = resolve(values.split ?? join(repo, 'models', 'siam-unet-lite', 'split.json'));
const modelDir = resolve(values.model ?? process.env.TUBAN_MODEL_DIR ?? join(repo, 'models', 'siam-unet-lite'));
const say = (line: string) => process.stderr.write(`${line}\n`);
const command = ['npx', 'tsx', relative(process.cwd(), process.argv[1]) || process.argv[1], ...argv].join(' ');

/** One scene's rasters after the cases were planned: the edited earlier month, the later month, the masks. */
export interface SceneCases {
  pair: RealPair;
  widthPx: number;
  heightPx: number;
  geoTransform: GeoTransform;
  before: Uint8Array;
  after: Uint8Array;
  masks: CaseMasks;
}

async function main(): Promise<void> {
  const { pairsDir, coordsFile } = dataLayout(dataDir);
  for (const p of [pairsDir, coordsFile])
    if (!existsSync(p))
      throw new BadInputError('data_missing', `${p}: not found; pass --data DIR (see scripts/bench-real.ts)`, { p });
  const { splitNames } = await import('../training/dataset.eval.ts');
  const names = values.images
    ? values.images
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : splitNames(splitFile, pairsDir);
  const coords = JSON.parse(readFileSync(coordsFile, 'utf8')) as Record<string, unknown>;
  const work = mkdtempSync(join(tmpdir(), 'tuban-bench-followup-'));
  try {
    const pairs = planPairs(names, coords, pairsDir, join(work, 'tif'));
    say(`warping ${pairs.length} pairs to EPSG:${UTM_14N.epsg} at 0.5 m in ${work}`);
    warpScenes(pairs, planScenes(pairs, false, join(work, 'tif')));
    for (const p of pairs) copyFileSync(p.tif.before, `${p.tif.before}.warped`);
    const runs: PolicyRun[] = [];
    let lookback: FollowupResult['lookback'] = null;
    const cases = new Map<CaseKind, number>();
    for (let deal = 0; deal < deals; deal++) {
      if (deals > 1) say(`deal ${deal + 1} of ${deals}`);
      const scenes: SceneCases[] = [];
      for (const p of pairs) scenes.push(await planScene(p, deal));
      for (const k of scenes.flatMap((sc) => [...sc.masks.cases.values()])) cases.set(k, (cases.get(k) ?? 0) + 1);
      const layers = writeLayers(scenes, join(work, `layers-${deal}`));
      for (const policy of ['none', 'subtract', 'classify'] as const) {
        say(
          `running ${CURRENT_MONTH} against ${BASELINE_MONTH}: ${policy === 'none' ? 'no building or permit layer' : `TUBAN_BUILDING_POLICY=${policy}`}`,
        );
        const { run, lookbackResult } = await policyRun(policy, pairs, scenes, layers, work);
        const i = runs.findIndex((x) => x.policy === policy);
        if (i < 0) runs.push(run);
        else runs[i] = mergeRuns(runs[i], run);
        if (lookbackResult) lookback = lookback ? mergeLookback(lookback, lookbackResult) : lookbackResult;
      }
    }
    // real roofs standing a year apart (unlabeled-pairs), judged with the classify run's thresholds
    const thresholds = (runs.find((x) => x.policy === 'classify')?.params.lookback ?? {}) as LookbackThresholds;
    const roofs = await standingRoofEvidence(dataDir);
    const roofJudgements = roofs?.map((e) => ({
      ...judgeFootprint(e, thresholds),
      corrIn: e.corrIn,
      ratio: e.diffIn / (e.diffRing + 0.01),
    }));
    const result: FollowupResult = {
      command,
      environment: Object.fromEntries(
        Object.entries(process.env).filter(([k, v]) => k.startsWith('TUBAN_') && v) as [string, string][],
      ),
      model: modelDir,
      images: pairs.map((p) => p.image),
      cores: cpus().length,
      deals,
      cases: Object.fromEntries(cases),
      runs,
      lookback,
      standingRoofs: roofJudgements ?? null,
    };
    console.log(values.json ? JSON.stringify(result, null, 2) : followupText(result));
  } finally {
    if (values.keep) say(`kept ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
}

/** Reads one warped pair, deals its cases (deal k: another shuffle) and writes the edited earlier month over its warped one. */
async function planScene(pair: RealPair, deal: number): Promise<SceneCases> {
  const { GeoTiffSource } = await import('../pipeline/io/geotiff.source.ts');
  const { writeGeoTiff } = await import('../pipeline/io/geotiff.write.ts');
  const read = async (file: string) => {
    const src = await GeoTiffSource.open(file);
    try {
      const { widthPx, heightPx, geoTransform, crs, bandCount } = src.info;
      const win = { x: 0, y: 0, width: widthPx, height: heightPx };
      const bands = await src.readWindow(win);
      const data = new Uint8Array(widthPx * heightPx * bandCount);
      for (let i = 0; i < widthPx * heightPx; i++)
        for (let k = 0; k < bandCount; k++) data[i * bandCount + k] = bands[k][i];
      return { widthPx, heightPx, geoTransform, crs, bandCount, data };
    } finally {
      await src.close();
    }
  };
  const [a, b, l] = await Promise.all([read(`${pair.tif.before}.warped`), read(pair.tif.after), read(pair.tif.label)]);
  for (const r of [b, l])
    if (r.widthPx !== a.widthPx || r.heightPx !== a.heightPx || r.geoTransform.some((v, i) => v !== a.geoTransform[i]))
      throw new Error(`${pair.image}: the warped months and label are not on one grid`);
  if (a.bandCount !== 3 || b.bandCount !== 3) throw new Error(`${pair.image}: expected RGB`);
  const masks = planCases(l.data, a.data, b.data, a.widthPx, a.heightPx, 3, (seedOf(pair.image) + deal * 7919) >>> 0);
  writeGeoTiff(pair.tif.before, {
    widthPx: a.widthPx,
    heightPx: a.heightPx,
    samples: a.data,
    bands: 3,
    crs: a.crs,
    geoTransform: a.geoTransform,
    nodata: 0,
  });
  return {
    pair,
    widthPx: a.widthPx,
    heightPx: a.heightPx,
    geoTransform: a.geoTransform,
    before: a.data,
    after: b.data,
    masks,
  };
}

/** The building and permit layers of every scene, as GeoJSON files in UTM 14N (with a valid permit's dates). */
function writeLayers(scenes: SceneCases[], dir: string): { building: string; permit: string } {
  mkdirSync(dir, { recursive: true });
  const out = { building: join(dir, 'building.geojson'), permit: join(dir, 'permit.geojson') };
  for (const kind of ['building', 'permit'] as const) {
    const features = scenes.flatMap((s) =>
      vectorized(kind === 'building' ? s.masks.registered : s.masks.permit, s).map((g, i) => ({
        type: 'Feature',
        properties:
          kind === 'permit'
            ? { code: `${s.pair.image}-permit-${i + 1}`, valid_from: '2010-01-01', valid_to: '2030-12-31' }
            : { code: `${s.pair.image}-building-${i + 1}` },
        geometry: g,
      })),
    );
    writeFileSync(
      out[kind],
      JSON.stringify({
        type: 'FeatureCollection',
        crs: { type: 'name', properties: { name: `urn:ogc:def:crs:EPSG::${UTM_14N.epsg}` } },
        features,
      }),
    );
  }
  return out;
}

function vectorized(mask: Uint8Array, s: SceneCases): unknown[] {
  return vectorizeRaster(mask, s.widthPx, s.heightPx, s.geoTransform, { minAreaM2: 1 }).map((f) => f.geometry);
}

/** One run of the month in a schema of its own, scored per case; the classify run goes on to 回头看. */
async function policyRun(
  policy: 'none' | 'subtract' | 'classify',
  pairs: RealPair[],
  scenes: SceneCases[],
  layers: { building: string; permit: string },
  work: string,
): Promise<{ run: PolicyRun; lookbackResult: FollowupResult['lookback'] }> {
  const { cmdBatchRun } = await import('../cli/commands.ts');
  const { createLogger } = await import('../core/log.ts');
  const { registerImagery } = await import('../imagery/register.ts');
  const { importLayer } = await import('../store/layers.ts');
  const { runSql } = await import('../store/sql.ts');
  const { createTruthTable, storeTruthMask } = await import('./bench-real.truth.ts');
  const env: Record<string, string> = policy === 'none' ? {} : { TUBAN_BUILDING_POLICY: policy };
  const schema = await openBenchSchema(`followup_${policy}`, work, modelDir, pairs, env);
  const { db, config } = schema;
  try {
    if (policy !== 'none')
      for (const kind of ['building', 'permit'] as const) {
        const r = await importLayer(db, layers[kind], kind);
        if (r.rejected.length)
          say(`${kind}: ${r.rejected.length} feature(s) rejected: ${JSON.stringify(r.rejected.slice(0, 3))}`);
      }
    for (const [month, date, pick] of [
      [BASELINE_MONTH, '2002-06-01', (p: RealPair) => p.tif.before],
      [CURRENT_MONTH, '2018-06-01', (p: RealPair) => p.tif.after],
    ] as const) {
      const r = await registerImagery(db, config, month, pairs.map(pick), date);
      if (r.refused.length) throw new Error(`imagery of ${month} refused: ${JSON.stringify(r.refused)}`);
    }
    await createTruthTable(db);
    for (const s of scenes)
      for (const [kind, mask] of s.masks.truth)
        await storeTruthMask(db, s.pair.image, kind, mask, s.widthPx, s.heightPx, s.geoTransform);
    const t0 = performance.now();
    const r = await cmdBatchRun(db, config, createLogger('warn'), {
      month: CURRENT_MONTH,
      baseline: BASELINE_MONTH,
      wait: true,
      inProcessWorkers: true,
    });
    const wallS = (performance.now() - t0) / 1000;
    const s = r.summary!;
    const perCase = await runSql<{ kind: CaseKind; buildings: number; found: number; relation_right: number }>(
      db,
      'bench/followup_cases',
      { batch_id: s.batchId, month: CURRENT_MONTH, expected: JSON.stringify(EXPECTED_RELATION) },
    );
    const changed = [...CASES, 'small'].filter((k) => EXPECTED_RELATION[k as CaseKind] !== null);
    const onTruth = await runSql<{ code: string; on_change: boolean; on_unchanged: boolean }>(
      db,
      'bench/followup_patches',
      { batch_id: s.batchId, month: CURRENT_MONTH, changed: JSON.stringify(changed) },
    );
    const km2 = (
      await runSql<{ km2: number; image: string | null }>(db, 'bench/real_scores', {
        batch_id: s.batchId,
        month: CURRENT_MONTH,
        srid: UTM_14N.epsg,
        footprints: footprintsParam(pairs),
      })
    ).reduce((a, x) => a + (x.image ? Number(x.km2) : 0), 0);
    const batch = await db('batch').where({ id: s.batchId }).first();
    const run: PolicyRun = {
      policy,
      params: batch.params,
      wallS,
      km2,
      patches: s.patches.new,
      newByRelation: s.newByRelation ?? null,
      truePatches: onTruth.filter((p) => p.on_change).length,
      onUnchanged: onTruth.filter((p) => p.on_unchanged).length,
      perCase,
    };
    const lookbackResult =
      policy === 'classify'
        ? await lookbackRound(
            schema,
            scenes,
            s.batchId,
            new Set(onTruth.filter((p) => p.on_change).map((p) => p.code)),
            km2,
            join(work, 'tif', '2018-02'),
            say,
          )
        : null;
    return { run, lookbackResult };
  } finally {
    await schema.close(values.keep ?? false, say);
  }
}

main().catch((err) => {
  console.error(err instanceof BadInputError ? err.message : err);
  process.exitCode = err instanceof BadInputError ? 2 : 1;
});
