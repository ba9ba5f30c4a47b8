/**
 * The monthly batch on the fixtures, in one process: generate fixtures, migrate, load the
 * reference layers, register two months of imagery, run the batch through BullMQ workers and
 * print the patch list per town. Started by `npm run demo` (scripts/demo.mjs), which installs
 * packages and starts Redis first.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../config/env.ts';
import { cmdBatchRun, cmdPatchesList } from '../cli/commands.ts';
import { cmdImageryRegister, cmdLayersImport, cmdMigrate } from '../cli/commands.setup.ts';
import { patchListText, summaryText } from '../cli/format.ts';
import { createLogger } from '../core/log.ts';
import { isEmbedded, openDb } from '../store/db.ts';
import { FIXTURE, makeFixtures } from './make-fixtures.ts';

const env = { ...process.env };
env.TUBAN_DATA_DIR ??= join('data', 'demo');
env.TUBAN_QUEUE_PREFIX ??= 'tuban-demo';
env.TUBAN_LOG_LEVEL ??= 'warn';
// The fixture scenes are synthetic, with flat-coloured roofs; the trained default (siam-unet-lite,
// made for real imagery) finds them only in part, so the demo runs the CVA baseline unless told otherwise.
env.TUBAN_MODEL_DIR ??= 'models/cva-baseline';
const config = loadConfig(env);
const log = createLogger(config.TUBAN_LOG_LEVEL);
const step = (s: string) => console.log(`\n== ${s}`);

if (isEmbedded(config)) {
  // The demo starts from an empty embedded database each time, so its output is always the same.
  rmSync(join(config.dataDir, 'pgdata'), { recursive: true, force: true });
}

step('Fixtures: two months of 0.5 m imagery over Huli district, Xiamen (EPSG:4548)');
const fx = makeFixtures(join(config.dataDir, 'fixtures'));
console.log(`written to ${fx.dir}`);

step(
  isEmbedded(config)
    ? `Database: embedded PGlite + PostGIS in ${join(config.dataDir, 'pgdata')} (DATABASE_URL unset)`
    : `Database: ${config.DATABASE_URL?.replace(/:[^:@/]*@/, ':***@')}, schema ${config.TUBAN_DB_SCHEMA}`,
);
const db = await openDb(config);
let failed = false;
try {
  console.log(await cmdMigrate(db, config));

  step('Reference layers');
  for (const kind of ['town', 'grid', 'permit', 'building', 'farmland', 'ecological', 'water'] as const) {
    const r = await cmdLayersImport(db, fx.layers[kind], kind);
    console.log(r.text);
  }

  step('Imagery');
  console.log((await cmdImageryRegister(db, config, FIXTURE.baselineMonth, [fx.imagery.baseline])).text);
  console.log(
    (await cmdImageryRegister(db, config, FIXTURE.currentMonth, [fx.imagery.current], FIXTURE.currentDate)).text,
  );

  step(
    `Monthly batch ${FIXTURE.currentMonth} against ${FIXTURE.baselineMonth} (BullMQ at ${config.REDIS_URL}, prefix ${config.TUBAN_QUEUE_PREFIX})`,
  );
  console.log(
    `model ${config.modelDir} (synthetic fixture scenes; real imagery uses the default models/siam-unet-lite)`,
  );
  const t0 = Date.now();
  let last = '';
  const r = await cmdBatchRun(db, config, log, {
    month: FIXTURE.currentMonth,
    baseline: FIXTURE.baselineMonth,
    wait: true,
    inProcessWorkers: true,
    onProgress: (p) => {
      const line = `  parts ${p.parts.done}/${p.parts.total}, tiles ${p.vectorized + p.failed}/${p.total} done (${p.failed} failed)`;
      if (line !== last) console.log(line);
      last = line;
    },
  });
  if (!r.summary) throw new Error('batch finished without a summary');
  console.log(summaryText(r.summary));
  console.log(`  ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  failed = r.summary.status !== 'completed';

  step(`Patches (图斑) of ${FIXTURE.currentMonth} by town`);
  console.log(patchListText(FIXTURE.currentMonth, await cmdPatchesList(db, FIXTURE.currentMonth)));
  console.log(`Ground truth: ${fx.truth} (5 unpermitted new buildings must be patches; 2 permitted ones must not).`);
  // the CLI opens the same database only with the same settings: the demo's data folder is its own
  const same =
    isEmbedded(config) && process.env.TUBAN_DATA_DIR === undefined ? `TUBAN_DATA_DIR=${config.TUBAN_DATA_DIR} ` : '';
  console.log(`Next: ${same}npx tuban patches list --month ${FIXTURE.currentMonth} --json, or see README.md.`);
} finally {
  await db.destroy();
}
process.exit(failed ? 1 : 0);
