/**
 * The learning loop proven on a place the starting model has not seen (issue 32): the Pakistan house pairs
 * (pak-houses-train, 256² JPEGs) play a city's months. Each pair gets invented corners in UTM 14N (its pixels
 * taken as 0.5 m; see `place`); the pairs are dealt into
 * months in name order, each month's "after" images registered under that month and its "before" images under
 * the month before. Month by month, on the real PostgreSQL/PostGIS and Redis:
 *   batch (the running model) → the towns' verdicts, given from the labels (a patch is a confirmed illegal
 *   building when half its area lies on labelled new buildings, else a false change) → `model evaluate` of the
 *   candidate trained on the earlier months, on this month → `model promote` or its refusal → `model train` on
 *   every month so far (in the background process the product uses, waited for here).
 * With `--patrol SHARE` the towns also report that share of the month's labelled new buildings the batch
 * missed (at least TUBAN_MIN_AREA_M2, less than a fifth under any patch), as found on patrol (巡查发现), through
 * the product's `reportPatch`, and confirm them: the misses the promotion rule then counts. Which ones is
 * fixed by each building's row (a hash), not drawn at random.
 * Beside the product's own figures it prints what the verdicts cannot see: pixel F1 of each model on the
 * month's pairs against their labels. The shared validation sets are the LEVIR-CD validation subset
 * (models/siam-unet-lite/split.json) and pak-houses-val; replay is what the base was trained on.
 *
 *   npx tsx scripts/proof-city.ts [--base models/siam-unet-lite/bases/no-pak] [--months 4] [--minutes 12]
 *       [--steps 300] [--lr 5e-5] [--city-share 0.3] [--patrol 0.5] [--freeze-bn] [--anchor W]
 *       [--quiet-m M]
 *       [--data ../shared/data] [--json] [--keep]
 *
 * TUBAN_TRAIN_THREADS sets the training's threads (default 1). Not a test: figures depend on the machine.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { RealPair } from './bench-real.plan.ts';
import { openBenchSchema } from './bench-real.setup.ts';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    base: { type: 'string', default: join(repo, 'models/siam-unet-lite/bases/no-pak') },
    months: { type: 'string', default: '4' },
    minutes: { type: 'string', default: '12' },
    steps: { type: 'string' },
    lr: { type: 'string' },
    'city-share': { type: 'string' },
    patrol: { type: 'string', default: '0' },
    'freeze-bn': { type: 'boolean', default: false },
    anchor: { type: 'string' },
    'quiet-m': { type: 'string' },
    data: { type: 'string', default: resolve(repo, '../shared/data') },
    json: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});
const say = (line: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${line}`);
const pairsRoot = join(values.data!, 'change-pairs');
const cityDir = join(pairsRoot, 'pak-houses-train');
const nMonths = Number(values.months);
const monthName = (k: number) => `2026-${String(k + 1).padStart(2, '0')}`; // k = 0 is the first imagery only

/**
 * Each pair's corners: 256² pixels taken as 0.5 m (the dataset states no resolution; about 0.3–0.6 m), laid
 * west to east 300 m apart in UTM 14N from an invented origin near 30.3° N 98.2° W, written as GeoTIFFs
 * without resampling. `bounds` (degrees) only places the town layer around them.
 */
function place(names: string[], work: string, monthOf: (i: number) => number): (RealPair & { utm: number[] })[] {
  const [x0, yTop] = execFileSync('gdaltransform', ['-s_srs', 'EPSG:4326', '-t_srs', 'EPSG:32614'], {
    input: '-98.2 30.3',
  })
    .toString()
    .trim()
    .split(/\s+/)
    .map(Number);
  return names.map((image, i) => {
    const k = monthOf(i);
    const tif = image.replace(/\.[a-z]+$/i, '.tif');
    const west = Math.round(x0) + i * 300;
    const north = Math.round(yTop);
    return {
      image,
      utm: [west, north, west + 128, north - 128],
      bounds: { westDeg: -98.2 + i * 0.0031, northDeg: 30.3, eastDeg: -98.2 + i * 0.0031 + 0.0014, southDeg: 30.2988 },
      png: {
        before: join(cityDir, 'A', image),
        after: join(cityDir, 'B', image),
        label: join(cityDir, 'label', image.replace(/\.[a-z]+$/i, '.png')),
      },
      tif: {
        before: join(work, monthName(k - 1), tif),
        after: join(work, monthName(k), tif),
        label: join(work, 'label', tif),
      },
    };
  });
}

/** The pairs' JPEGs (and label PNGs) as tiled GeoTIFFs at their corners. */
function writeTiffs(pairs: (RealPair & { utm: number[] })[]): void {
  for (const p of pairs)
    for (const kind of ['before', 'after', 'label'] as const) {
      mkdirSync(dirname(p.tif[kind]), { recursive: true });
      execFileSync('gdal_translate', [
        '-q',
        '-a_srs',
        'EPSG:32614',
        '-a_ullr',
        ...p.utm.map(String),
        '-co',
        'TILED=YES',
        '-co',
        'COMPRESS=DEFLATE',
        p.png[kind],
        p.tif[kind],
      ]);
    }
}

interface Row {
  month: string;
  pairs: number;
  patches: number;
  confirmed: number;
  falseChange: number;
  /** Missed buildings the towns reported (巡查), and those they could not (an open patch already there). */
  reported: number;
  reportRefused: number;
  running: string;
  candidate: string | null;
  heldOut: { running: unknown; candidate: unknown } | null;
  monthF1: { running: number; candidate: number | null };
  pakVal: { running: number; candidate: number | null };
  levirVal: { running: number; candidate: number | null };
  decision: string;
  trainingS: number | null;
}

async function main(): Promise<void> {
  const names = readdirSync(join(cityDir, 'A')).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const per = Math.ceil(names.length / nMonths);
  const monthOf = (i: number) => 1 + Math.floor(i / per);
  const work = mkdtempSync(join(tmpdir(), 'tuban-proof-'));
  const pairs = place(names, join(work, 'tif'), monthOf);
  say(`${names.length} pairs in ${nMonths} months (${per} a month), work ${work}`);
  writeTiffs(pairs);
  const levir = join(pairsRoot, 'levir-cd-t38');
  const pakVal = join(pairsRoot, 'pak-houses-val');
  const split = join(repo, 'models/siam-unet-lite/split.json');
  const { config, db, close } = await openBenchSchema('proof', work, resolve(values.base!), pairs, {
    TUBAN_TRAINING_REPLAY: `${levir}=0.425,${join(pairsRoot, 'egy-bcd-train')}@0.5=0.075`,
    TUBAN_MODEL_VALIDATION: `${levir}#${split},${pakVal}`,
  });
  const rows: Row[] = [];
  try {
    const { cmdBatchRun } = await import('../cli/commands.ts');
    const { createLogger } = await import('../core/log.ts');
    const { registerImagery } = await import('../imagery/register.ts');
    const { storeTruth } = await import('./bench-real.truth.ts');
    const { ensureRunning, startTraining, trainingProgress } = await import('../training/models.ts');
    const { evaluateModel, promoteModel } = await import('../training/evaluate.ts');
    const { evaluateDataset } = await import('../training/dataset.eval.ts');
    const { runningModel, listModels } = await import('../store/models.ts');
    const env = { db, config, actor: 'proof' };
    await storeTruth(db, pairs);
    await ensureRunning(env);
    const f1Cache = new Map<string, number>();
    const f1 = async (modelDir: string, dir: string, images?: string[]) => {
      const key = `${modelDir}|${dir}|${images?.join(',')}`;
      if (!f1Cache.has(key)) {
        let splitFile: string | undefined;
        if (images) {
          splitFile = join(work, `split-${f1Cache.size}.json`);
          writeFileSync(splitFile, JSON.stringify({ validation: { [dir.split('/').pop()!]: images } }));
        } else if (dir === levir) splitFile = split;
        const r = await evaluateDataset(dir, modelDir, { split: splitFile, sweep: [] });
        f1Cache.set(key, r.total.pixel.f1 ?? 0);
      }
      return f1Cache.get(key)!;
    };
    for (let k = 1; k <= nMonths; k++) {
      const month = monthName(k);
      const mine = pairs.filter((_, i) => monthOf(i) === k);
      for (const [m, files] of [
        [monthName(k - 1), mine.map((p) => p.tif.before)],
        [month, mine.map((p) => p.tif.after)],
      ] as const) {
        const r = await registerImagery(db, config, m, [...files]);
        if (r.refused.length) throw new Error(`imagery of ${m} refused: ${JSON.stringify(r.refused)}`);
      }
      const running = (await runningModel(db))!;
      say(`${month}: batch of ${mine.length} pairs with ${running.name} ${running.version}`);
      const b = await cmdBatchRun(db, config, createLogger('warn'), {
        month,
        baseline: monthName(k - 1),
        wait: true,
        inProcessWorkers: true,
      });
      const verdicts = await db.raw(
        `with s as (
           select p.id, coalesce(ST_Area(ST_Intersection(p.geom, (select ST_Union(t.geom) from bench_truth t where ST_Intersects(t.geom, p.geom)))), 0)
                  / nullif(ST_Area(p.geom), 0) as share
           from patch p where p.batch_id = ?)
         update patch set status = case when s.share >= 0.5 then 'illegal' else 'false_change' end,
                          verification_result = case when s.share >= 0.5 then 'illegal' else 'false_change' end
         from s where patch.id = s.id
         returning patch.verification_result`,
        [b.batchId],
      );
      const results = (verdicts.rows as { verification_result: string }[]).map((r) => r.verification_result);
      const confirmed = results.filter((r) => r === 'illegal').length;
      const monthImages = mine.map((p) => p.image);
      const patrol = await reportMisses(db, config, month, monthImages, Number(values.patrol));
      const candidate = (await listModels(db)).filter((m) => m.status === 'candidate').pop();
      const row: Row = {
        month,
        pairs: mine.length,
        patches: results.length,
        confirmed,
        falseChange: results.length - confirmed,
        reported: patrol.reported,
        reportRefused: patrol.refused,
        running: `${running.name} ${running.version}`,
        candidate: candidate
          ? `${candidate.version} (${candidate.trained_on?.since}…${candidate.trained_on?.until})`
          : null,
        heldOut: null,
        monthF1: { running: await f1(running.dir, cityDir, monthImages), candidate: null },
        pakVal: { running: await f1(running.dir, pakVal), candidate: null },
        levirVal: { running: await f1(running.dir, levir), candidate: null },
        decision: '-',
        trainingS: null,
      };
      if (candidate) {
        say(`${month}: evaluating ${candidate.version} on this month's verdicts`);
        const ev = await evaluateModel(env, { month, id: candidate.id });
        row.heldOut = { running: ev.running.heldOut, candidate: ev.candidate.heldOut };
        row.monthF1.candidate = await f1(candidate.dir, cityDir, monthImages);
        row.pakVal.candidate = await f1(candidate.dir, pakVal);
        row.levirVal.candidate = await f1(candidate.dir, levir);
        try {
          await promoteModel(env, candidate.id);
          row.decision = 'promoted';
        } catch (err) {
          row.decision = `refused: ${(err as Error).message.split('\n').slice(1).join('; ').trim()}`;
        }
        say(`${month}: ${row.decision}`);
      }
      if (k < nMonths) {
        say(`${month}: fine-tuning on ${monthName(1)}…${month} (${values.minutes} min at most)`);
        const t = await startTraining(env, {
          since: monthName(1),
          until: month,
          minutes: Number(values.minutes),
          steps: values.steps === undefined ? undefined : Number(values.steps),
          lr: values.lr === undefined ? undefined : Number(values.lr),
          cityShare: values['city-share'] === undefined ? undefined : Number(values['city-share']),
          freezeBn: values['freeze-bn'],
          anchor: values.anchor === undefined ? undefined : Number(values.anchor),
          quietM: values['quiet-m'] === undefined ? undefined : Number(values['quiet-m']),
          wait: true,
        });
        if (t.status !== 'candidate')
          throw new Error(`training ${t.version} ended ${t.status}: ${t.trained_on?.error}`);
        const p = trainingProgress(t);
        row.trainingS = p?.seconds ?? null;
        say(
          `${month}: ${t.version} trained, ${p?.step} steps in ${p?.seconds} s on ${t.trained_on?.chips} chips (${t.trained_on?.skipped?.count} patches skipped, e.g. ${t.trained_on?.skipped?.example})`,
        );
      }
      rows.push(row);
      console.log(JSON.stringify(row));
    }
  } finally {
    await close(values.keep!, say);
    if (!values.keep) rmSync(work, { recursive: true, force: true });
  }
  if (!values.json) printTable(rows);
}

/**
 * 巡查发现: the towns report `share` of the month's labelled new buildings that no patch covers (a building
 * under less than a fifth of any patch), each as its labelled outline, and confirm them as illegal — the
 * misses a town finds on its rounds. Chosen by a hash of the building's row, so a rerun reports the same.
 */
async function reportMisses(
  db: import('knex').Knex,
  config: import('../config/env.ts').Config,
  month: string,
  images: string[],
  share: number,
): Promise<{ reported: number; refused: number }> {
  if (!(share > 0)) return { reported: 0, refused: 0 };
  const { reportPatch } = await import('../store/report.ts');
  const { TubanError } = await import('../core/errors.ts');
  const { workflowEnv } = await import('../workflow/env.ts');
  const misses = (
    await db.raw(
      `select t.id, ST_AsGeoJSON(ST_Transform(ST_GeometryN(t.geom, 1), 4326), 8)::json as outline
       from bench_truth t
       where t.image = any(?) and ST_Area(t.geom) >= ?
         and not exists (select 1 from patch p where p.month = ? and ST_Intersects(p.geom, t.geom)
                         and ST_Area(ST_Intersection(p.geom, t.geom)) >= 0.2 * ST_Area(t.geom))
       order by t.id`,
      [images, config.TUBAN_MIN_AREA_M2, month],
    )
  ).rows as { id: string; outline: unknown }[];
  const town = { id: 0, username: 'proof-patrol', displayName: '巡查', role: 'analyst' as const, townCode: null };
  const rules = { touchM: config.TUBAN_BUILDING_TOUCH_M, onBuildingShare: config.TUBAN_ON_BUILDING_SHARE };
  let reported = 0;
  let refused = 0;
  for (const m of misses) {
    if (((Number(m.id) * 2654435761) % 4294967296) / 4294967296 >= share) continue;
    try {
      const made = await reportPatch(db, workflowEnv(config), rules, town, {
        outline: m.outline,
        month,
        source: 'patrol',
        visible: true,
        request_key: `proof-truth-${m.id}`,
      });
      await db('patch')
        .where({ code: made.code })
        .update({ status: 'illegal', verification_result: 'illegal', violation: 'construction' });
      reported++;
    } catch (err) {
      // the product's refusals (an open patch there, off the imagery) are counted; anything else is a fault
      if (!(err instanceof TubanError)) throw err;
      refused++;
      say(`${month}: truth ${m.id} not reported: ${err.message}`);
    }
  }
  say(
    `${month}: ${misses.length} labelled buildings missed by the batch; the towns reported ${reported} (${refused} refused)`,
  );
  return { reported, refused };
}

function printTable(rows: Row[]): void {
  const f = (v: number | null) => (v === null ? '-' : v.toFixed(3));
  const h = (x: unknown) => {
    if (!x) return '-';
    const v = x as {
      found: number;
      confirmed: number;
      falseFlagged: number;
      score: number;
      reported?: number;
      reportedFound?: number;
    };
    return `${v.found}/${v.confirmed} found (reported misses ${v.reportedFound ?? 0}/${v.reported ?? 0}), ${v.falseFlagged} false, score ${v.score.toFixed(3)}`;
  };
  console.log(
    '\n| month | patches (confirmed / false) | reported misses | running | candidate | held-out, running | held-out, candidate | month pixel F1 (labels) | pak-houses-val | LEVIR val subset | decision | training |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows)
    console.log(
      `| ${r.month} | ${r.patches} (${r.confirmed} / ${r.falseChange}) | ${r.reported}${r.reportRefused ? ` (${r.reportRefused} refused)` : ''} | ${r.running} | ${r.candidate ?? '-'} | ${h(r.heldOut?.running)} | ${h(r.heldOut?.candidate)} | ${f(r.monthF1.running)} → ${f(r.monthF1.candidate)} | ${f(r.pakVal.running)} → ${f(r.pakVal.candidate)} | ${f(r.levirVal.running)} → ${f(r.levirVal.candidate)} | ${r.decision} | ${r.trainingS === null ? '-' : `${Math.round(r.trainingS / 60)} min`} |`,
    );
}

if (!existsSync(cityDir)) {
  console.error(`${cityDir}: not found (--data names the folder holding change-pairs/)`);
  process.exit(2);
}
await main();
