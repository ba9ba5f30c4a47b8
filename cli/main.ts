import { Command, CommanderError, Option } from 'commander';
import cliProgress from 'cli-progress';
import { BadInputError, NotFoundError, TubanError, errorFate } from '../core/errors.ts';
import { latestBatchOfMonth } from '../store/batch.ts';
import { OnnxChangeModel } from '../pipeline/model.onnx.ts';
import { isEmbedded } from '../store/db.ts';
import { checkRedis, redisConnection } from '../workers/queues.ts';
import { BatchProgressReader } from '../workers/batch.progress.ts';
import { resumeBatch } from '../workers/batch.launch.ts';
import { scheduleDeadlineSweep, startWorkers } from '../workers/worker.pool.ts';
import { workflowEnv } from '../workflow/env.ts';
import { checkDate } from '../workflow/calendar.ts';
import { createUser, issueToken, listUsers, revokeTokens, setDisabled, setPassword } from '../store/users.ts';
import { sweepOverdue } from '../store/overdue.ts';
import {
  cmdBatchRetry,
  cmdBatchRun,
  cmdBatchStatus,
  cmdDetect,
  cmdImageryRegister,
  cmdLayersImport,
  cmdMigrate,
  cmdPatchesList,
  cmdVectorize,
} from './commands.ts';
import { CliContext } from './context.ts';
import { patchListText, summaryText } from './format.ts';
import { checkMonth } from '../core/month.ts';

const program = new Command('tuban')
  .description('两违图斑: change detection and patch workflow for monthly satellite imagery')
  .showHelpAfterError();
let ctx: CliContext | undefined;
const context = () => (ctx ??= new CliContext());
const month = (v: string) => checkMonth(v, 'month');
const isoDate = (name: string) => (v: string) => checkDate(v, name);
const num = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new BadInputError('bad_option', `${name} "${v}" is not a number`);
  return n;
};

program
  .command('db')
  .description('database')
  .command('migrate')
  .description('apply the schema (knex migrations from sql/migrations); run it as the owner role')
  .option(
    '--app-role <role>',
    'the role the server and workers log in as: granted rows in the tables, not ownership (default TUBAN_APP_ROLE)',
  )
  .action(async (o: { appRole?: string }) => {
    const c = context();
    if (o.appRole) c.config.TUBAN_APP_ROLE = o.appRole;
    console.log(await cmdMigrate(await c.database(), c.config));
  });

program
  .command('layers')
  .description('reference layers')
  .command('import <file>')
  .description('load a GeoJSON reference layer into PostGIS (repairs invalid geometry, reports rejected features)')
  .addOption(
    new Option('--kind <kind>', 'layer kind')
      .choices(['permit', 'building', 'farmland', 'ecological', 'water', 'town', 'grid'])
      .makeOptionMandatory(),
  )
  .option('--srid <n>', "EPSG code of the coordinates (default: the file's crs member, else 4326)", num('--srid'))
  .action(async (file: string, o: { kind: string; srid?: number }) => {
    const c = context();
    const r = await cmdLayersImport(await c.database(), file, o.kind, o.srid);
    console.log(r.text);
    if (!r.ok) process.exitCode = 2;
  });

program
  .command('imagery')
  .description('imagery')
  .command('register <paths...>')
  .description("register a month's GeoTIFFs (files or folders)")
  .requiredOption('--month <YYYY-MM>', 'month of the imagery', month)
  .option('--date <YYYY-MM-DD>', 'acquisition date (default: first day of the month)', isoDate('--date'))
  .action(async (paths: string[], o: { month: string; date?: string }) => {
    const c = context();
    const r = await cmdImageryRegister(await c.database(), c.config, o.month, paths, o.date);
    console.log(r.text);
    if (!r.ok) process.exitCode = 2;
  });

const batch = program.command('batch').description('monthly batches');
batch
  .command('run')
  .description('enqueue the monthly batch as a BullMQ flow')
  .requiredOption('--month <YYYY-MM>', 'current month', month)
  .option('--baseline <YYYY-MM>', 'baseline month (default: the month before)', month)
  .option('--wait', 'follow the batch to the end with a progress bar')
  .option('--json', 'print the summary as one JSON object')
  .option('--workers', 'run the workers in this process too (always so with embedded PGlite)')
  .option(
    '--threshold <p>',
    "change probability threshold (default: TUBAN_THRESHOLD or the model's)",
    num('--threshold'),
  )
  .option(
    '--regularise',
    'redraw building-like patches as rectangles or at right angles, changing no area by more than TUBAN_REGULARISE_MAX_CHANGE (default TUBAN_REGULARISE)',
  )
  .action(
    async (o: {
      month: string;
      baseline?: string;
      wait?: boolean;
      json?: boolean;
      workers?: boolean;
      threshold?: number;
      regularise?: boolean;
    }) => {
      const c = context();
      const embedded = isEmbedded(c.config);
      if (embedded && !o.json) console.error('Embedded PGlite database: running the workers in this process.');
      const bar =
        o.wait && !o.json && process.stderr.isTTY
          ? new cliProgress.SingleBar(
              {
                format:
                  'parts {bar} {value}/{total} | scenes {scenes}/{sceneTotal} | failed scenes {failed} | ETA {eta_formatted}',
                stream: process.stderr,
              },
              cliProgress.Presets.shades_classic,
            )
          : null;
      let started = false;
      let lastLine = '';
      const r = await cmdBatchRun(await c.database(), c.config, c.log, {
        regularise: o.regularise || undefined,
        month: o.month,
        baseline: o.baseline,
        wait: Boolean(o.wait || embedded),
        inProcessWorkers: Boolean(o.workers || embedded),
        threshold: o.threshold,
        onProgress: (p) => {
          const done = p.vectorized + p.failed;
          const fields = { scenes: done, sceneTotal: p.total, failed: p.failed };
          if (bar) {
            if (!started) bar.start(p.parts.total, p.parts.done, fields);
            started = true;
            bar.setTotal(p.parts.total);
            bar.update(p.parts.done, fields);
          } else if (!o.json) {
            const line = `parts ${p.parts.done}/${p.parts.total}, scenes ${done}/${p.total} done (${p.failed} failed), status ${p.status}`;
            if (line !== lastLine) console.error(line);
            lastLine = line;
          }
        },
      });
      bar?.stop();
      if (!r.summary)
        console.log(o.json ? JSON.stringify({ batchId: r.batchId, status: 'queued' }) : `batch ${r.batchId} queued`);
      else console.log(o.json ? JSON.stringify(r.summary) : summaryText(r.summary));
    },
  );
batch
  .command('status [batchId]')
  .description('state and summary of a batch (default: the latest of --month)')
  .option('--month <YYYY-MM>', 'the latest batch of this month', month)
  .option('--json', 'JSON output')
  .action(async (id: string | undefined, o: { month?: string; json?: boolean }) => {
    const c = context();
    const db = await c.database();
    const batchId = await resolveBatchId(db, id, o.month);
    const s = await cmdBatchStatus(db, batchId);
    if ('tiles' in s) return console.log(o.json ? JSON.stringify(s) : summaryText(s));
    // Not finished: progress per scene, from the database and (when it answers) BullMQ.
    let redis: ReturnType<typeof redisConnection> | undefined;
    try {
      await checkRedis(c.config, 1000);
      redis = redisConnection(c.config);
    } catch {
      redis = undefined;
    }
    const reader = new BatchProgressReader(db, c.config, redis);
    try {
      const p = await reader.read(batchId);
      if (o.json) return console.log(JSON.stringify(p));
      const b = p.batch;
      console.log(
        `batch ${b.id} ${b.month} (baseline ${b.baseline_month}) — ${b.status}: ${b.vectorized + b.failed}/${b.tiles} scenes done, ${b.failed} failed; diff job ${p.diff ?? '–'}${p.queueAvailable ? '' : ' (BullMQ not reachable: database state only)'}`,
      );
      for (const t of p.tiles)
        console.log(
          `  ${t.path}: ${t.status}, parts ${t.parts_done}/${t.parts}${t.part_jobs ? `; part jobs ${t.part_jobs}` : ''}${t.error_code ? ` [${t.error_code}] ${t.error_message}` : ''}`,
        );
    } finally {
      await reader.close();
      redis?.disconnect();
    }
  });
batch
  .command('retry [batchId]')
  .description('re-run the failed tiles of a finished batch, then its diff')
  .requiredOption('--failed', 'retry the failed tiles (the only mode)')
  .option('--month <YYYY-MM>', 'the latest batch of this month', month)
  .option('--wait', 'follow it to the end')
  .option('--json', 'print the summary as one JSON object')
  .option('--workers', 'run the workers in this process too (always so with embedded PGlite)')
  .action(async (id: string | undefined, o: { month?: string; wait?: boolean; json?: boolean; workers?: boolean }) => {
    const c = context();
    const db = await c.database();
    const batchId = await resolveBatchId(db, id, o.month);
    const embedded = isEmbedded(c.config);
    const r = await cmdBatchRetry(db, c.config, c.log, {
      batchId,
      wait: Boolean(o.wait || embedded),
      inProcessWorkers: Boolean(o.workers || embedded),
    });
    if (!o.json) {
      console.error(
        `batch ${batchId}: ${r.retried} failed tile(s) queued again${r.stillFailed.length ? `; ${r.stillFailed.length} still without baseline: ${r.stillFailed.join(', ')}` : ''}`,
      );
    }
    if (r.summary) console.log(o.json ? JSON.stringify(r.summary) : summaryText(r.summary));
    else if (o.json) console.log(JSON.stringify({ batchId, retried: r.retried, stillFailed: r.stillFailed }));
  });

batch
  .command('resume [batchId]')
  .description('enqueue again the unfinished tiles of a queued or running batch whose jobs were lost')
  .option('--month <YYYY-MM>', 'the latest batch of this month', month)
  .action(async (id: string | undefined, o: { month?: string }) => {
    const c = context();
    const db = await c.database();
    const batchId = await resolveBatchId(db, id, o.month);
    await checkRedis(c.config);
    const r = await resumeBatch(db, c.config, batchId);
    console.log(`batch ${batchId}: ${r.requeued} unfinished tile(s) and the diff enqueued again`);
  });

async function resolveBatchId(
  db: Awaited<ReturnType<CliContext['database']>>,
  id: string | undefined,
  m: string | undefined,
): Promise<number> {
  if (id !== undefined) {
    if (!/^\d+$/.test(id)) throw new BadInputError('bad_option', `batch id "${id}" is not a number`);
    return Number(id);
  }
  if (!m) throw new BadInputError('bad_option', 'give a batch id or --month YYYY-MM');
  const b = await latestBatchOfMonth(db, m);
  if (!b) throw new NotFoundError(`no batch for ${m}`);
  return b.id;
}

program
  .command('worker')
  .description('run the part (detect and vectorize) and diff workers until SIGTERM')
  .option('--concurrency <n>', 'jobs at a time per queue', num('--concurrency'))
  .action(async (o: { concurrency?: number }) => {
    const c = context();
    if (isEmbedded(c.config))
      throw new BadInputError(
        'embedded_db',
        'the embedded PGlite database cannot be shared between processes: set DATABASE_URL to a PostgreSQL server to run separate workers, or use `tuban batch run --wait`, which runs workers in-process',
      );
    await checkRedis(c.config);
    const model = await OnnxChangeModel.load(c.config.modelDir, { intraOpThreads: c.config.TUBAN_ORT_THREADS });
    const pool = startWorkers({
      db: await c.database(),
      config: c.config,
      model,
      log: c.log,
      concurrency: o.concurrency,
      workflow: workflowEnv(c.config),
      autorun: false,
    });
    await scheduleDeadlineSweep(c.config);
    // said before the first job is taken, so every job's log lines follow it
    c.log.info('Worker:Started', {
      pid: process.pid,
      model: model.manifest.name,
      concurrency: o.concurrency ?? c.config.TUBAN_CONCURRENCY,
    });
    pool.run();
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        c.log.info('Worker:Stopping', { signal });
        void pool.close().then(resolve);
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
    await model.close();
    c.log.info('Worker:Stopped', { pid: process.pid });
  });

program
  .command('serve')
  .description('HTTP API and web map until SIGTERM')
  .option('--port <n>', 'port (default TUBAN_PORT)', num('--port'))
  .option('--host <addr>', 'address (default TUBAN_HOST)')
  .action(async (o: { port?: number; host?: string }) => {
    const c = context();
    // the server's modules load only for serve: every other command starts without them
    const [{ buildServer }, { loadWebAssets, staleWebSources }] = await Promise.all([
      import('../server/app.ts'),
      import('../server/web.ts'),
    ]);
    // built once by `npm run build` (npm ci runs it), not at every start
    const web = loadWebAssets();
    const stale = staleWebSources();
    if (stale.length) c.log.warn('Server:WebBundleStale', { changed: stale, fix: 'npm run build' });
    const redis = redisConnection(c.config, { lazyConnect: false });
    redis.on('error', (err) => c.log.warn('Server:RedisError', { message: err.message }));
    const app = await buildServer({
      db: await c.database({ statementTimeoutMs: c.config.TUBAN_HTTP_TIMEOUT_S * 1000 }),
      config: c.config,
      env: workflowEnv(c.config),
      evidenceMaxBytes: c.config.TUBAN_EVIDENCE_MAX_BYTES,
      web,
      redis,
    });
    const address = await app.listen({ port: o.port ?? c.config.TUBAN_PORT, host: o.host ?? c.config.TUBAN_HOST });
    c.log.info('Server:Listening', { address });
    await new Promise<void>((resolve) => {
      process.once('SIGTERM', resolve);
      process.once('SIGINT', resolve);
    });
    await app.close();
    redis.disconnect();
  });

const users = program.command('users').description('users and API tokens');
users
  .command('add <username>')
  .description('create a user')
  .addOption(
    new Option('--role <role>', 'role').choices(['analyst', 'town', 'supervisor', 'admin']).makeOptionMandatory(),
  )
  .option('--town <code>', 'town code (town users only)')
  .option('--name <display>', 'display name')
  .option(
    '--password <pw>',
    'password for POST /api/login, at least 10 characters (visible to other users of this machine: prefer --password-stdin)',
  )
  .option('--password-stdin', 'read the password from the first line of standard input')
  .action(
    async (
      username: string,
      o: { role: string; town?: string; name?: string; password?: string; passwordStdin?: boolean },
    ) => {
      const password = o.passwordStdin ? await firstLineOfStdin('--password-stdin') : o.password;
      const u = await createUser(await context().database(), {
        username,
        role: o.role,
        townCode: o.town,
        displayName: o.name,
        password,
      });
      console.log(`user ${u.username} (${u.role}${u.townCode ? `, town ${u.townCode}` : ''}) created`);
    },
  );
users
  .command('token <username>')
  .description('issue a new API token (printed once; it expires after TUBAN_TOKEN_DAYS)')
  .action(async (username: string) => {
    const c = context();
    const r = await issueToken(await c.database(), username, 'cli', c.config.TUBAN_TOKEN_DAYS);
    console.error(`token for ${r.user.username}, valid until ${r.expiresAt}`);
    console.log(r.token);
  });
users
  .command('list')
  .description('users, their roles and towns, whether disabled, live tokens and last use')
  .action(async () => {
    const rows = await listUsers(await context().database());
    console.log(['user', 'role', 'town', 'state', 'live tokens', 'last used'].join('\t'));
    for (const u of rows)
      console.log(
        [
          u.username,
          u.role,
          u.townCode ?? '-',
          u.disabled ? 'disabled' : 'active',
          u.activeTokens,
          u.lastUsedAt ?? '-',
        ].join('\t'),
      );
  });
users
  .command('revoke <username>')
  .description('revoke every token of a user (ends all their sessions)')
  .action(async (username: string) => {
    console.log(`${username}: ${await revokeTokens(await context().database(), username)} token(s) revoked`);
  });
users
  .command('disable <username>')
  .description('disable a user: no login, every token revoked')
  .action(async (username: string) => {
    const r = await setDisabled(await context().database(), username, true);
    console.log(`${username}: disabled, ${r.revoked} token(s) revoked`);
  });
users
  .command('enable <username>')
  .description('let a disabled user log in again')
  .action(async (username: string) => {
    await setDisabled(await context().database(), username, false);
    console.log(`${username}: enabled`);
  });
users
  .command('passwd <username>')
  .description(
    "set a user's password from the first line of standard input (at least 10 characters, not the user name); revokes their tokens",
  )
  .action(async (username: string) => {
    const r = await setPassword(await context().database(), username, await firstLineOfStdin('passwd'));
    console.log(`${username}: password set, ${r.revoked} token(s) revoked`);
  });

/** The first line of standard input, without its line end (a password piped in, or typed). */
async function firstLineOfStdin(what: string): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write('password: ');
  let text = '';
  for await (const chunk of process.stdin) {
    text += chunk;
    if (text.includes('\n') || text.length > 4096) break;
  }
  const line = text.split(/\r?\n/)[0];
  if (!line) throw new BadInputError('bad_field', `${what}: no password on standard input`, { field: 'password' });
  return line;
}

program
  .command('deadlines')
  .description('deadlines')
  .command('sweep')
  .description('mark overdue patches and escalate (the daily job, run now)')
  .option('--date <YYYY-MM-DD>', 'act as if today were this date', isoDate('--date'))
  .action(async (o: { date?: string }) => {
    const c = context();
    const env = workflowEnv(c.config);
    if (o.date) env.today = () => o.date!;
    const r = await sweepOverdue(await c.database(), env);
    console.log(`${env.today()}: ${r.overdue} newly overdue, ${r.escalated} escalated`);
  });

program
  .command('detect <before> <after>')
  .description('change probability for one image pair (no database or queue)')
  .requiredOption('-o, --output <prob.tif>', 'output GeoTIFF')
  .option('--model <dir>', 'model folder (default: TUBAN_MODEL_DIR)')
  .action(async (before: string, after: string, o: { output: string; model?: string }) => {
    console.log(await cmdDetect(context().config, before, after, o.output, o.model));
  });

program
  .command('vectorize <raster>')
  .description('mask or probability GeoTIFF → polygons (GeoJSON, raster CRS)')
  .requiredOption('-o, --output <out.geojson>', 'output GeoJSON')
  .option('--threshold <p>', 'probability threshold', num('--threshold'), 0.5)
  .option('--min-area-m2 <n>', 'drop smaller polygons', num('--min-area-m2'), 0)
  .option('--simplify-m <n>', 'Douglas–Peucker tolerance in metres (0 = exact pixel outlines)', num('--simplify-m'), 0)
  .option(
    '--interior-threshold <p>',
    'building-interior probability that seeds a split, when the raster has the interior as band 2',
    num('--interior-threshold'),
    0.5,
  )
  .action(
    async (
      raster: string,
      o: { output: string; threshold: number; minAreaM2: number; simplifyM: number; interiorThreshold: number },
    ) => {
      console.log(await cmdVectorize(raster, o.output, o));
    },
  );

const patchesCmd = program.command('patches').description('patches');
patchesCmd
  .command('list')
  .description('patches first detected in a month')
  .requiredOption('--month <YYYY-MM>', 'month', month)
  .option('--town <code>', 'only this town')
  .option('--json', 'JSON output (geometry in lon/lat)')
  .action(async (o: { month: string; town?: string; json?: boolean }) => {
    const rows = await cmdPatchesList(await context().database(), o.month, o.town);
    console.log(o.json ? JSON.stringify(rows) : patchListText(o.month, rows));
  });

patchesCmd
  .command('export')
  .description("the month's patch list as a GIS file or spreadsheet")
  .requiredOption('--month <YYYY-MM>', 'month', month)
  .option('--town <code>', 'only this town')
  .addOption(
    new Option('--format <fmt>', 'output format')
      .choices(['gpkg', 'shp', 'geojson', 'kml', 'csv', 'xlsx', 'pdf', 'zip'])
      .makeOptionMandatory(),
  )
  .requiredOption('-o, --output <path>', 'output file (a folder for shp)')
  .action(async (o: { month: string; town?: string; format: string; output: string }) => {
    const c = context();
    const { exportPatches } = await import('../store/export.ts');
    const r = await exportPatches(await c.database(), workflowEnv(c.config), {
      month: o.month,
      town: o.town,
      format: o.format,
      outPath: o.output,
      storageSrid: c.config.TUBAN_STORAGE_SRID,
      fontPath: c.config.TUBAN_PDF_FONT,
    });
    console.log(`${r.count} patch(es) → ${r.files.join(', ')}`);
  });

program
  .command('eval')
  .description('pixel and object metrics of a change model on a labelled dataset (A/, B/, label/)')
  .requiredOption('--dataset <dir>', 'dataset folder')
  .option('--model <dir>', 'model folder (default TUBAN_MODEL_DIR)')
  .option('--threshold <p>', "probability threshold (default: the model's)", num('--threshold'))
  .option('--gsd <m>', "ground sample distance of the images in metres (default: the model's)", num('--gsd'))
  .option(
    '--split <file.json>',
    'evaluate only the validation images the split file names for this folder (e.g. models/siam-unet-lite/split.json)',
  )
  .option(
    '--interior-threshold <p>',
    "interior probability that seeds a split of touching buildings (default: the model's)",
    num('--interior-threshold'),
  )
  .option(
    '--no-split-objects',
    'count objects as the 8-connected regions of the mask, without splitting touching buildings',
  )
  .option(
    '--min-area-m2 <n>',
    'drop predicted objects smaller than this, as the batch drops patches under TUBAN_MIN_AREA_M2 (default 0: keep all)',
    num('--min-area-m2'),
  )
  .option('--json', 'print one JSON object')
  .action(
    async (o: {
      dataset: string;
      model?: string;
      threshold?: number;
      gsd?: number;
      split?: string;
      interiorThreshold?: number;
      splitObjects: boolean;
      minAreaM2?: number;
      json?: boolean;
    }) => {
      const { evalText, evaluateDataset } = await import('./eval.ts');
      const r = await evaluateDataset(o.dataset, o.model ?? context().config.modelDir, {
        threshold: o.threshold,
        gsdM: o.gsd,
        split: o.split,
        interiorThreshold: o.interiorThreshold,
        splitObjects: o.splitObjects,
        minAreaM2: o.minAreaM2,
      });
      console.log(o.json ? JSON.stringify(r) : evalText(r));
    },
  );

const trainingCmd = program.command('training').description("training data from the city's own verified patches");
trainingCmd
  .command('export')
  .description('before/after chips of verified patches with their verdict as the change label (A/, B/, label/)')
  .requiredOption('--month <YYYY-MM>', 'last month', month)
  .option('--since <YYYY-MM>', 'first month (default: --month)', month)
  .option('--size <px>', 'chip size in pixels (larger when a patch needs it)', num('--size'), 256)
  .requiredOption('-o, --output <dir>', 'output folder')
  .action(async (o: { month: string; since?: string; size: number; output: string }) => {
    const { exportTrainingChips } = await import('../store/training.ts');
    const r = await exportTrainingChips(await context().database(), {
      month: o.month,
      since: o.since,
      sizePx: o.size,
      outDir: o.output,
    });
    const change = r.chips.filter((c) => c.label === 'change').length;
    console.log(`${r.chips.length} chip(s) → ${o.output} (${change} change, ${r.chips.length - change} no change)`);
    for (const s of r.skipped) console.log(`skipped ${s.code}: ${s.reason}`);
  });

// commander's own refusals (a missing required option, an unknown command) are bad input: exit 2, not 1
program.exitOverride();
for (const c of program.commands.flatMap(function all(c: Command): Command[] {
  return [c, ...c.commands.flatMap(all)];
}))
  c.exitOverride();
try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // help and --version are not errors; commander has printed its message already
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else {
    const kind = err instanceof TubanError ? err.kind : null;
    console.error(`tuban: ${(err as Error).message}`);
    if (!kind && process.env.TUBAN_LOG_LEVEL === 'debug') console.error((err as Error).stack);
    process.exitCode = kind ? errorFate[kind].exitCode : 1;
  }
} finally {
  // closing what never opened (a database that did not answer) must not hide the reason above
  await ctx?.close().catch(() => undefined);
}
