/**
 * Benchmark: the monthly batch end to end on the fixtures scaled up (the 2 × 2 km² fixture scene
 * repeated N × N times, both months), on the real PostgreSQL/PostGIS and Redis, through BullMQ
 * workers in this process. Prints km² per hour and per core, and where the time went: read,
 * inference, blending, vectorizing, storing, diff, match and emit. Not a test: numbers
 * depend on the machine.
 *
 *   npx tsx scripts/bench-batch.ts [--repeat 4] [--scene-px 0] [--compress NONE] [--model models/siam-unet-lite] [--part 3072] [--concurrency 2] [--workers 1,2] [--keep]
 *
 * --scene-px N mosaics each month into scenes of N × N px (as vendors deliver them: 20,000–40,000
 * px a side, cut into parts of --part px), instead of the fixture's 1024² tiles; --compress sets
 * the GeoTIFF compression GDAL writes (NONE, DEFLATE, LZW); --concurrency the part jobs in flight
 * (default TUBAN_CONCURRENCY's). Inference is the model's own compute time; with parts in flight
 * together the other stages overlap it and each other, so only the wall time and inference are
 * comparable across concurrencies. --workers 1,2 runs the month once per count with that many
 * `tuban worker` processes (each with cores / N onnxruntime threads) instead of workers in this
 * process, and prints km²/h for each against the model alone: how throughput scales with workers.
 *
 * Uses DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test) in a schema of its own and
 * REDIS_URL under a key prefix of its own; both are removed afterwards (unless --keep).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpus, tmpdir } from 'node:os';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { cmdBatchRun } from '../cli/commands.ts';
import { DEFAULT_PART_PX, loadConfig } from '../config/env.ts';
import { createLogger } from '../core/log.ts';
import { openDb } from '../store/db.ts';
import { registerImagery } from '../imagery/register.ts';
import { importLayer } from '../store/layers.ts';
import { migrate } from '../store/migrate.ts';
import { modelAlone } from './bench.model-alone.ts';
import { FIXTURE, makeFixtures } from './make-fixtures.ts';

const argv = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = argv.indexOf(name);
  return i < 0 ? dflt : argv[i + 1];
};
const repeat = Number(opt('--repeat', '4'));
const keep = argv.includes('--keep');
const scenePx = Number(opt('--scene-px', '0'));
const compress = opt('--compress', 'NONE').toUpperCase();
const id = randomBytes(3).toString('hex');
const work = mkdtempSync(join(tmpdir(), 'tuban-bench-batch-'));

console.log(`scaling the fixtures ${repeat} × ${repeat} in ${work}`);
const fx = makeFixtures(join(work, 'fixtures'));
const sceneM = FIXTURE.tilePx * FIXTURE.tilesX * FIXTURE.gsdM; // 1024 m a side
for (const [month, src] of [
  [FIXTURE.baselineMonth, fx.imagery.baseline],
  [FIXTURE.currentMonth, fx.imagery.current],
] as const) {
  const out = join(work, 'scaled', month);
  mkdirSync(out, { recursive: true });
  for (const f of readdirSync(src).filter((n) => n.endsWith('.tif'))) {
    const info = JSON.parse(execFileSync('gdalinfo', ['-json', join(src, f)], { encoding: 'utf8' }));
    const [ulx, uly] = info.cornerCoordinates.upperLeft as number[];
    const [lrx, lry] = info.cornerCoordinates.lowerRight as number[];
    for (let i = 0; i < repeat; i++) {
      for (let j = 0; j < repeat; j++) {
        const dx = i * sceneM,
          dy = -j * sceneM;
        execFileSync('gdal_translate', [
          '-q',
          '-co',
          'TILED=YES',
          '-co',
          `COMPRESS=${compress}`,
          '-a_ullr',
          `${ulx + dx}`,
          `${uly + dy}`,
          `${lrx + dx}`,
          `${lry + dy}`,
          join(src, f),
          join(out, `s${i}_${j}_${f}`),
        ]);
      }
    }
  }
  if (scenePx > 0) {
    // one mosaic of the month, cut into scenes of scenePx (the last row and column smaller)
    const tiles = readdirSync(out)
      .filter((n) => n.endsWith('.tif'))
      .map((n) => join(out, n));
    const vrt = join(work, `${month}.vrt`);
    execFileSync('gdalbuildvrt', ['-q', vrt, ...tiles]);
    const size = JSON.parse(execFileSync('gdalinfo', ['-json', vrt], { encoding: 'utf8' })).size as [number, number];
    for (let y = 0; y < size[1]; y += scenePx) {
      for (let x = 0; x < size[0]; x += scenePx) {
        const w = Math.min(scenePx, size[0] - x),
          h = Math.min(scenePx, size[1] - y);
        execFileSync('gdal_translate', [
          '-q',
          '-co',
          'TILED=YES',
          '-co',
          `COMPRESS=${compress}`,
          ...(compress === 'NONE' ? [] : ['-co', 'PREDICTOR=2']),
          '-srcwin',
          `${x}`,
          `${y}`,
          `${w}`,
          `${h}`,
          vrt,
          join(out, `scene_${x}_${y}.tif`),
        ]);
      }
    }
    for (const f of tiles) rmSync(f);
  }
}
const km2 = ((repeat * sceneM) / 1000) ** 2;

const env = {
  ...process.env,
  DATABASE_URL: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
  TUBAN_DB_SCHEMA: `tuban_bench_${id}`,
  TUBAN_QUEUE_PREFIX: `tuban-bench-${id}`,
  TUBAN_DATA_DIR: join(work, 'data'),
  TUBAN_LOG_LEVEL: 'warn',
  TUBAN_MODEL_DIR: opt('--model', process.env.TUBAN_MODEL_DIR ?? 'models/siam-unet-lite'),
  TUBAN_PART_PX: opt('--part', process.env.TUBAN_PART_PX ?? String(DEFAULT_PART_PX)),
  ...(argv.includes('--concurrency') ? { TUBAN_CONCURRENCY: opt('--concurrency', '') } : {}),
};
const config = loadConfig(env);
const db = await openDb(config);
try {
  await migrate(db, config);
  for (const kind of ['town', 'grid', 'permit', 'building', 'farmland', 'ecological', 'water'] as const)
    await importLayer(db, fx.layers[kind], kind);
  await registerImagery(db, config, FIXTURE.baselineMonth, [join(work, 'scaled', FIXTURE.baselineMonth)], '2024-02-10');
  await registerImagery(
    db,
    config,
    FIXTURE.currentMonth,
    [join(work, 'scaled', FIXTURE.currentMonth)],
    FIXTURE.currentDate,
  );

  if (argv.includes('--workers')) await scaling(opt('--workers', '1,2').split(',').map(Number));
  else await single();
} finally {
  await cleanUp();
}

/** The month run once with workers in this process: where the time went, stage by stage. */
async function single(): Promise<void> {
  const t0 = performance.now();
  const r = await cmdBatchRun(db, config, createLogger('warn'), {
    month: FIXTURE.currentMonth,
    baseline: FIXTURE.baselineMonth,
    wait: true,
    inProcessWorkers: true,
  });
  const wallS = (performance.now() - t0) / 1000;
  const s = r.summary!;
  if (!s?.tiles) throw new Error(`batch ended without a summary: ${JSON.stringify(s)}`);
  const tiles = await db('batch_tile').where({ batch_id: s.batchId }).select('timings');
  const sum = (k: string) => tiles.reduce((a, t) => a + Number(t.timings?.[k] ?? 0), 0) / 1000;
  const stages: [string, number][] = [
    ['read + normalise', sum('read')],
    ['inference', sum('infer')],
    ['waiting for the model', sum('modelWait')],
    ['blend windows', sum('blend')],
    ['vectorize', sum('vectorize')],
    ['store polygons', sum('store')],
    ['diff (PostGIS)', (s.timings?.diffMs ?? 0) / 1000],
    ['match', (s.timings?.matchMs ?? 0) / 1000],
    ['emit', (s.timings?.emitMs ?? 0) / 1000],
  ];
  const staged = stages.reduce((a, [, v]) => a + v, 0);
  const cores = cpus().length;
  const layout = scenePx > 0 ? `scenes of ≤ ${scenePx}² px` : 'tiles of 1024² px';
  const parts = await db('batch_part').where({ batch_id: s.batchId }).count<{ n: string }[]>({ n: '*' });
  console.log(
    `\nbatch ${s.batchId}: ${s.status}; ${s.tiles.total} ${layout}, ${parts[0].n} parts, GeoTIFF compression ${compress} (${km2.toFixed(1)} km² at 0.5 m, ${(km2 * 4).toFixed(0)} MP a month); ${s.patches.new} new patches`,
  );
  console.log(
    `model ${s.model.name} ${s.model.version}; parts of ≤ ${config.TUBAN_PART_PX} px; worker concurrency ${config.TUBAN_CONCURRENCY}; onnxruntime threads ${config.TUBAN_ORT_THREADS ?? 'default'}; ${cores} cores`,
  );
  console.log(
    `wall ${wallS.toFixed(1)} s → ${(km2 / (wallS / 3600)).toFixed(1)} km²/h, ${(km2 / (wallS / 3600) / cores).toFixed(1)} km²/h per core`,
  );
  console.log('\nstage                         seconds   share of wall');
  for (const [name, v] of stages)
    console.log(`${name.padEnd(30)}${v.toFixed(2).padStart(8)}   ${((100 * v) / wallS).toFixed(1).padStart(5)} %`);
  console.log(
    `${'queues, job start, other'.padEnd(30)}${(wallS - staged).toFixed(2).padStart(8)}   ${((100 * (wallS - staged)) / wallS).toFixed(1).padStart(5)} %`,
  );
  console.log(`\neverything but inference: ${((100 * (wallS - sum('infer'))) / wallS).toFixed(1)} % of the wall time`);

  // the fair reference: the model alone on the same window pixels (scripts/bench.model-alone.ts)
  try {
    const dirOf = (d: string) =>
      join(
        d,
        readdirSync(d)
          .filter((n) => n.endsWith('.tif'))
          .sort()[0],
      );
    const ref = await modelAlone(db, config.modelDir, config.TUBAN_ORT_THREADS, s.batchId, {
      before: dirOf(fx.imagery.baseline),
      after: dirOf(fx.imagery.current),
    });
    console.log(
      `the model alone on the batch's ${ref.windowMpx.toFixed(0)} MP of windows (${ref.msPerMpx.toFixed(0)} ms/MP; ${ref.sizes}, timed on a fixture pair): ${ref.seconds.toFixed(2)} s; the wall time beyond it: ${((100 * (wallS - ref.seconds)) / wallS).toFixed(1)} %`,
    );
  } catch (err) {
    console.log(`no reference time for the model alone: ${(err as Error).message}`);
  }
}

/** The month run once per worker count, with that many `tuban worker` processes; km²/h of each. */
async function scaling(counts: number[]): Promise<void> {
  const { spawn } = await import('node:child_process');
  const { loadManifest } = await import('../pipeline/io/model.manifest.ts');
  const { launchBatch, waitForBatch } = await import('../workers/batch.launch.ts');
  const manifest = loadManifest(config.modelDir).manifest;
  const cores = cpus().length;
  const rows: string[] = [];
  let alone: number | null = null;
  for (const n of counts) {
    if (!Number.isInteger(n) || n < 1) throw new Error(`--workers: ${n} is not a worker count`);
    const threads = Math.max(1, Math.floor(cores / n));
    const procs = Array.from({ length: n }, () =>
      spawn(process.execPath, ['bin/tuban.mjs', 'worker'], {
        env: { ...env, TUBAN_LOG_LEVEL: 'info', TUBAN_ORT_THREADS: String(threads) },
        stdio: ['ignore', 'ignore', 'pipe'],
      }),
    );
    await Promise.all(
      procs.map(
        (p) =>
          new Promise<void>((resolve, reject) => {
            let log = '';
            p.stderr!.on('data', (d: Buffer) => {
              log += d;
              if (log.includes('"Worker:Started"')) resolve();
            });
            p.on('exit', (code) =>
              reject(new Error(`a worker exited (${code}) before it started: ${log.slice(-500)}`)),
            );
          }),
      ),
    );
    const t0 = performance.now();
    const { batch } = await launchBatch(db, config, manifest, FIXTURE.currentMonth, FIXTURE.baselineMonth);
    const done = await waitForBatch(db, batch.id, () => {}, { timeoutMs: 4 * 3600_000 });
    const wallS = (performance.now() - t0) / 1000;
    for (const p of procs) p.kill('SIGTERM');
    await Promise.all(procs.map((p) => new Promise((r) => (p.exitCode !== null ? r(null) : p.on('exit', r)))));
    if (alone === null) {
      const dirOf = (d: string) =>
        join(
          d,
          readdirSync(d)
            .filter((f) => f.endsWith('.tif'))
            .sort()[0],
        );
      alone = (
        await modelAlone(db, config.modelDir, config.TUBAN_ORT_THREADS, batch.id, {
          before: dirOf(fx.imagery.baseline),
          after: dirOf(fx.imagery.current),
        })
      ).seconds;
    }
    rows.push(
      `${String(n).padStart(7)}${String(threads).padStart(9)}${done.status.padStart(11)}${wallS.toFixed(1).padStart(8)}${(km2 / (wallS / 3600)).toFixed(0).padStart(9)}${(km2 / (wallS / 3600) / cores).toFixed(0).padStart(11)}${((100 * (wallS - alone)) / wallS).toFixed(1).padStart(15)} %`,
    );
  }
  console.log(
    `\n${km2.toFixed(1)} km² (${(km2 * 4).toFixed(0)} MP a month), model ${config.modelDir}, ${cores} cores; the model alone on the batch's windows: ${alone?.toFixed(1)} s`,
  );
  console.log('workers  threads     status  wall s   km²/h  per core  beyond model');
  for (const r of rows) console.log(r);
}

async function cleanUp(): Promise<void> {
  if (!keep) {
    await db.raw(`drop schema if exists ${config.TUBAN_DB_SCHEMA} cascade`);
    const redis = new Redis(config.REDIS_URL);
    const keys = await redis.keys(`${config.TUBAN_QUEUE_PREFIX}:*`);
    for (let i = 0; i < keys.length; i += 500) await redis.del(...keys.slice(i, i + 500));
    redis.disconnect();
    rmSync(work, { recursive: true, force: true });
  }
  await db.destroy();
}
