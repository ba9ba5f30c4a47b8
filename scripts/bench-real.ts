/**
 * Benchmark: the whole monthly batch on real imagery, scored against its labels. Each LEVIR-CD pair
 * (1024² RGB PNGs of Austin, Texas at about 0.5 m; A from 2002, B from 2018) is placed at its
 * Web Mercator corners (from its EPSG:4326 corners, with square pixels; see bench-real.plan.ts) and
 * warped with GDAL to UTM 14N at 0.5 m, registered as 2002-01 and 2018-01,
 * and run through the batch in this process on the real PostgreSQL/PostGIS and Redis. The labels,
 * traced with tuban's own vectorizer into buildings, are the truth the patches are measured on
 * (sql/bench/real_scores.sql says how). Prints the speed, where the time went, and per image:
 * buildings found and patches that lie on a new building. Not a test: the numbers depend on the
 * machine and the model.
 *
 * With --mosaic, pairs whose tiles touch are warped together into one larger scene per month, as a
 * city's imagery comes in large tiles; `--images all --mosaic` runs all 38 images of levir-cd-t38,
 * most of which the default model was trained on: their speed counts, and their scores are printed
 * apart from the validation images'.
 *
 * With --remote http or --remote s3 the scenes are served by a throwaway nginx or S3 server
 * (s3rver, in this process) on loopback and registered by URL, and the report adds the requests
 * and megabytes the batch read.
 *
 *   npx tsx scripts/bench-real.ts [--model DIR] [--images a.png,b.png|all] [--mosaic] [--remote http|s3] [--split FILE] [--data DIR] [--json] [--keep]
 *
 * Uses DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test) in a schema of its own and
 * REDIS_URL under a key prefix of its own; both, and the GeoTIFFs, are removed afterwards (unless --keep).
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BadInputError } from '../core/errors.ts';
import {
  BASELINE_MONTH,
  CURRENT_MONTH,
  UTM_14N,
  dataLayout,
  footprintsParam,
  planPairs,
  planScenes,
  type RealPair,
  type RealScene,
} from './bench-real.plan.ts';
import { openBenchSchema, warpScenes } from './bench-real.setup.ts';
import { reportText, share, totalOf, type ImageScore, type RealBenchResult } from './bench-real.report.ts';
import { modelAlone } from './bench.model-alone.ts';

const USAGE = `npx tsx scripts/bench-real.ts [options]
  --model DIR          change model (default TUBAN_MODEL_DIR, else models/siam-unet-lite)
  --images a.png,b.png LEVIR-CD images to run, or "all" (default: the split file's validation images)
  --mosaic             warp pairs whose tiles touch into one scene per month
  --remote http|s3     serve the scenes from a local nginx or S3 server and register them by URL
  --split FILE         split file naming the validation images (default models/siam-unet-lite/split.json)
  --data DIR           data root holding change-pairs/levir-cd-t38 and geotiff/levir-cd-geo (default ../shared/data from the repository)
  --json               print one JSON object instead of the text report
  --keep               keep the schema, the Redis keys and the GeoTIFFs (their names are printed)`;

const argv = process.argv.slice(2);
let values: {
  model?: string;
  images?: string;
  mosaic?: boolean;
  remote?: string;
  split?: string;
  data?: string;
  json?: boolean;
  keep?: boolean;
  help?: boolean;
};
try {
  ({ values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      images: { type: 'string' },
      mosaic: { type: 'boolean' },
      remote: { type: 'string' },
      split: { type: 'string' },
      data: { type: 'string' },
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
if (values.remote !== undefined && values.remote !== 'http' && values.remote !== 's3') {
  console.error(`--remote ${values.remote}: expected http or s3\n${USAGE}`);
  process.exit(2);
}

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dataDir = resolve(values.data ?? join(repo, '..', 'shared', 'data'));
const splitFile = resolve(values.split ?? join(repo, 'models', 'siam-unet-lite', 'split.json'));
const modelDir = resolve(values.model ?? process.env.TUBAN_MODEL_DIR ?? join(repo, 'models', 'siam-unet-lite'));
const say = (line: string) => process.stderr.write(`${line}\n`);
const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`);
const command = ['npx', 'tsx', relative(process.cwd(), process.argv[1]) || process.argv[1], ...argv]
  .map(quote)
  .join(' ');

async function main(): Promise<void> {
  const { pairsDir, coordsFile } = dataLayout(dataDir);
  for (const dir of [dataDir, pairsDir, join(pairsDir, 'A'), join(pairsDir, 'B'), join(pairsDir, 'label')]) {
    if (!existsSync(dir))
      throw new BadInputError(
        'data_missing',
        `${dir}: no such folder; pass --data DIR, a folder holding change-pairs/levir-cd-t38/{A,B,label} and geotiff/levir-cd-geo`,
        { dir },
      );
  }
  if (!existsSync(coordsFile))
    throw new BadInputError(
      'data_missing',
      `${coordsFile}: no such file (the EPSG:4326 corners of the LEVIR-CD images)`,
      { file: coordsFile },
    );
  const { splitNames } = await import('../training/dataset.eval.ts');
  const validation = splitNames(splitFile, pairsDir);
  const byNumber = (a: string, b: string) => a.localeCompare(b, 'en', { numeric: true });
  const names =
    values.images === 'all'
      ? readdirSync(join(pairsDir, 'A'))
          .filter((f) => f.endsWith('.png'))
          .sort(byNumber)
      : values.images
        ? values.images
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)
        : validation;
  const coords = JSON.parse(readFileSync(coordsFile, 'utf8')) as Record<string, unknown>;
  const work = mkdtempSync(join(tmpdir(), 'tuban-bench-real-'));
  try {
    const pairs = planPairs(names, coords, pairsDir, join(work, 'tif'));
    for (const f of pairs.flatMap((p) => Object.values(p.png)))
      if (!existsSync(f)) throw new BadInputError('data_missing', `${f}: no such file`, { file: f });
    await run(pairs, planScenes(pairs, values.mosaic ?? false, join(work, 'tif')), new Set(validation), work);
  } finally {
    if (values.keep) say(`kept ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
}

async function run(pairs: RealPair[], scenes: RealScene[], validation: Set<string>, work: string): Promise<void> {
  const { cmdBatchRun } = await import('../cli/commands.ts');
  const { createLogger, StageTimer } = await import('../core/log.ts');
  const { registerImagery } = await import('../imagery/register.ts');
  const { storeTruth } = await import('./bench-real.truth.ts');
  const { runSql } = await import('../store/sql.ts');

  const timer = new StageTimer();
  say(`warping ${pairs.length} pairs as ${scenes.length} scenes to EPSG:${UTM_14N.epsg} at 0.5 m in ${work}`);
  await timer.time('gdal', async () => warpScenes(pairs, scenes));

  const { config, db, close } = await openBenchSchema('real', work, modelDir, pairs);
  let stopServer = async () => {};
  try {
    const registered: { widthPx: number; heightPx: number }[] = [];
    const where = await serveScenes(join(work, 'tif'), scenes);
    stopServer = where.stop;
    for (const [month, pick] of [
      [BASELINE_MONTH, (sc: RealScene) => sc.tif.before],
      [CURRENT_MONTH, (sc: RealScene) => sc.tif.after],
    ] as const) {
      // registration reads each image once (its preview), so its time is reported too
      const r = await timer.time('register', () =>
        registerImagery(db, config, month, scenes.map(pick).map(where.locate)),
      );
      if (r.refused.length)
        throw new Error(`imagery of ${month} refused: ${r.refused.map((f) => `${f.path} (${f.reason})`).join('; ')}`);
      if (month === CURRENT_MONTH) registered.push(...r.registered);
    }

    say('tracing the labels into buildings');
    const repaired = await timer.time('truth', () => storeTruth(db, pairs));
    if (repaired) say(`${repaired} label outlines repaired with ST_MakeValid (pixels meeting at a corner)`);

    say(`running the batch ${CURRENT_MONTH} against ${BASELINE_MONTH} with ${modelDir}`);
    const { dropBlockCache, remoteTotals } = await import('../pipeline/io/byte.source.ts');
    dropBlockCache(); // registration read every block for the previews: the batch reads as a fresh worker would
    const read0 = { ...remoteTotals };
    const t0 = performance.now();
    const r = await cmdBatchRun(db, config, createLogger('warn'), {
      month: CURRENT_MONTH,
      baseline: BASELINE_MONTH,
      wait: true,
      inProcessWorkers: true,
    });
    const wallS = (performance.now() - t0) / 1000;
    const read = {
      requests: remoteTotals.requests - read0.requests,
      bytes: remoteTotals.bytes - read0.bytes,
      cachedBytes: remoteTotals.cachedBytes - read0.cachedBytes,
    };
    const s = r.summary;
    if (!s?.tiles) throw new Error(`batch ended without a summary: ${JSON.stringify(s)}`);
    for (const f of s.failedTiles) say(`failed tile ${f.path}: ${f.code} ${f.reason}`);

    // the same stage sums as scripts/bench-batch.ts prints
    const tiles = await db('batch_tile').where({ batch_id: s.batchId }).select('timings');
    const sum = (k: string) => tiles.reduce((a, t) => a + Number(t.timings?.[k] ?? 0), 0) / 1000;
    const stagesS: Record<string, number> = {
      'read + normalise': sum('read'),
      inference: sum('infer'),
      'waiting for the model': sum('modelWait'),
      'blend windows': sum('blend'),
      vectorize: sum('vectorize'),
      'store polygons': sum('store'),
      'diff (PostGIS)': (s.timings?.diffMs ?? 0) / 1000,
      match: (s.timings?.matchMs ?? 0) / 1000,
      emit: (s.timings?.emitMs ?? 0) / 1000,
    };

    // the fair reference: the model alone on the batch's windows, timed on the largest scene
    const largest = scenes.reduce((a, b) => (b.pairs.length > a.pairs.length ? b : a));
    const alone = await modelAlone(db, config.modelDir, config.TUBAN_ORT_THREADS, s.batchId, largest.tif).catch(
      (err: Error) => void say(`no reference time for the model alone: ${err.message}`),
    );

    const rows = await timer.time('score', () =>
      runSql<{
        image: string | null;
        km2: number;
        buildings: number;
        found: number;
        patches: number;
        true_patches: number;
      }>(db, 'bench/real_scores', {
        batch_id: s.batchId,
        month: CURRENT_MONTH,
        srid: UTM_14N.epsg,
        footprints: footprintsParam(pairs),
      }),
    );
    const order = (img: string | null) => (img === null ? pairs.length : pairs.findIndex((p) => p.image === img));
    const perImage: ImageScore[] = rows
      .map((x) => ({
        image: x.image,
        km2: Number(x.km2),
        buildings: x.buildings,
        found: x.found,
        patches: x.patches,
        truePatches: x.true_patches,
      }))
      .sort((a, b) => order(a.image) - order(b.image));
    const total = totalOf(perImage);
    const validationTotal = totalOf(perImage.filter((x) => x.image !== null && validation.has(x.image)));
    const batch = await db('batch').where({ id: s.batchId }).first();
    const cores = cpus().length;
    const currentMpx = registered.reduce((a, g) => a + g.widthPx * g.heightPx, 0) / 1e6;
    const result: RealBenchResult = {
      command,
      environment: Object.fromEntries(
        Object.entries(process.env).filter(([k, v]) => k.startsWith('TUBAN_') && v) as [string, string][],
      ),
      model: { dir: modelDir, name: s.model.name, version: s.model.version, threshold: Number(batch.params.threshold) },
      images: pairs.map((p) => p.image),
      validationImages: pairs.map((p) => p.image).filter((i) => validation.has(i)),
      scenes: scenes.map((sc) => sc.name),
      batch: {
        id: s.batchId,
        status: s.status,
        tiles: s.tiles.total,
        failedTiles: s.tiles.failed,
        changePolygons: s.changePolygons,
        patches: s.patches.new,
      },
      km2: total.km2,
      currentMpx,
      cores,
      wallS,
      mpxPerS: currentMpx / wallS,
      mpxPerSPerCore: currentMpx / wallS / cores,
      km2PerH: total.km2 / (wallS / 3600),
      km2PerHPerCore: total.km2 / (wallS / 3600) / cores,
      prepareS: Object.fromEntries(Object.entries(timer.ms).map(([k, ms]) => [k, ms / 1000])),
      stagesS,
      modelAlone: alone ?? null,
      remote: values.remote
        ? {
            kind: values.remote,
            requests: read.requests,
            mb: read.bytes / 1e6,
            cachedMb: read.cachedBytes / 1e6,
            filesMb: scenes.reduce((a, sc) => a + statSync(sc.tif.before).size + statSync(sc.tif.after).size, 0) / 1e6,
            parts: Number((await db('batch_part').where({ batch_id: s.batchId }).count({ n: '*' }))[0].n),
          }
        : null,
      perImage,
      total,
      validationTotal,
      foundShare: share(total.found, total.buildings),
      trueShare: share(total.truePatches, total.patches),
    };
    console.log(values.json ? JSON.stringify(result, null, 2) : reportText(result));
  } finally {
    await stopServer();
    await close(values.keep ?? false, say);
  }
}

/**
 * Where the batch reads the scenes from: their files, or (--remote) a throwaway nginx or S3 server
 * on loopback that serves them (test/helpers/remote.ts), with the URL of each file.
 */
async function serveScenes(
  root: string,
  scenes: RealScene[],
): Promise<{ locate: (file: string) => string; stop: () => Promise<void> }> {
  const rel = (file: string) => relative(root, file).split(/[\\/]/).join('/');
  if (!values.remote) return { locate: (f) => f, stop: async () => {} };
  const { LocalS3, StaticNginx, nginxBinary } = await import('../test/helpers/remote.ts');
  if (values.remote === 'http') {
    const binary = nginxBinary();
    if (!binary) throw new BadInputError('no_nginx', '--remote http needs nginx (apt-get install nginx)');
    const server = new StaticNginx(binary, root);
    await server.start();
    say(`serving the scenes from nginx at ${server.url}`);
    return { locate: (f) => `${server.url}/${rel(f)}`, stop: () => server.stop() };
  }
  const s3 = new LocalS3(['bench']);
  await s3.start();
  Object.assign(process.env, s3.env); // for the rest of the run: the batch reads from it
  const { writeObject } = await import('../store/objects.ts');
  for (const f of scenes.flatMap((sc) => [sc.tif.before, sc.tif.after]))
    await writeObject(`s3://bench/${rel(f)}`, readFileSync(f));
  say(`serving the scenes from s3rver at ${s3.endpoint} (bucket bench)`);
  return { locate: (f) => `s3://bench/${rel(f)}`, stop: () => s3.stop() };
}

main().catch((err) => {
  console.error(err instanceof BadInputError ? err.message : err);
  process.exitCode = err instanceof BadInputError ? 2 : 1;
});
