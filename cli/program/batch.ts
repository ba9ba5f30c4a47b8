import { Command } from 'commander';
import { BadInputError, NotFoundError } from '../../core/errors.ts';
import { isEmbedded } from '../../config/env.ts';
import type { Db } from '../../store/db.ts';
import { summaryText } from '../format.ts';
import { context, month, num } from '../options.ts';

// what the commands run is loaded when one runs: `tuban --help` and the light commands start fast
const commands = () => import('../commands.ts');
const queues = () => import('../../workers/queues.ts');

/** `tuban` commands: batch run/status/retry/resume and the worker. */
export function batchCommands(program: Command): void {
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
        const [{ cmdBatchRun }, { default: cliProgress }] = await Promise.all([commands(), import('cli-progress')]);
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
      const [{ cmdBatchStatus }, { checkRedis, redisConnection }, { BatchProgressReader }] = await Promise.all([
        commands(),
        queues(),
        import('../../workers/batch.progress.ts'),
      ]);
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
    .action(
      async (id: string | undefined, o: { month?: string; wait?: boolean; json?: boolean; workers?: boolean }) => {
        const c = context();
        const db = await c.database();
        const batchId = await resolveBatchId(db, id, o.month);
        const embedded = isEmbedded(c.config);
        const { cmdBatchRetry } = await commands();
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
      },
    );

  batch
    .command('resume [batchId]')
    .description('enqueue again the unfinished tiles of a queued or running batch whose jobs were lost')
    .option('--month <YYYY-MM>', 'the latest batch of this month', month)
    .action(async (id: string | undefined, o: { month?: string }) => {
      const c = context();
      const db = await c.database();
      const batchId = await resolveBatchId(db, id, o.month);
      await (await queues()).checkRedis(c.config);
      const { resumeBatch } = await import('../../workers/batch.launch.ts');
      const r = await resumeBatch(db, c.config, batchId);
      console.log(`batch ${batchId}: ${r.requeued} unfinished tile(s) and the diff enqueued again`);
    });

  async function resolveBatchId(db: Db, id: string | undefined, m: string | undefined): Promise<number> {
    if (id !== undefined) {
      if (!/^\d+$/.test(id)) throw new BadInputError('bad_option', `batch id "${id}" is not a number`);
      return Number(id);
    }
    if (!m) throw new BadInputError('bad_option', 'give a batch id or --month YYYY-MM');
    const { latestBatchOfMonth } = await import('../../store/batch.ts');
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
      const [{ checkRedis }, { OnnxChangeModel }, { scheduleDeadlineSweep, startWorkers }, { workflowEnv }] =
        await Promise.all([
          queues(),
          import('../../pipeline/io/model.onnx.ts'),
          import('../../workers/worker.pool.ts'),
          import('../../workflow/env.ts'),
        ]);
      await checkRedis(c.config);
      const { batchModelDir } = await import('../../training/models.ts');
      const db = await c.database();
      const model = await OnnxChangeModel.load((await batchModelDir(db, c.config)).dir, {
        intraOpThreads: c.config.TUBAN_ORT_THREADS,
      });
      const pool = startWorkers({
        db,
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
}
