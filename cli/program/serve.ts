import { Command } from 'commander';
import { context, isoDate, num } from '../options.ts';

/** `tuban` commands: the HTTP server and the daily deadline sweep. */
export function serveCommands(program: Command): void {
  program
    .command('serve')
    .description('HTTP API and web map until SIGTERM')
    .option('--port <n>', 'port (default TUBAN_PORT)', num('--port'))
    .option('--host <addr>', 'address (default TUBAN_HOST)')
    .action(async (o: { port?: number; host?: string }) => {
      const c = context();
      // the server's modules load only for serve: every other command starts without them
      const [{ buildServer }, { loadWebAssets, staleWebSources }, { redisConnection }, { workflowEnv }] =
        await Promise.all([
          import('../../server/app.ts'),
          import('../../server/web.ts'),
          import('../../workers/queues.ts'),
          import('../../workflow/env.ts'),
        ]); // buildServer lays the database's calendar years over the file's
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
  const calendar = program.command('calendar').description('the working-day calendar deadlines count on');
  calendar
    .command('status')
    .description('which years the calendar covers; a warning from 60 days before its end')
    .action(async () => {
      const c = context();
      const [{ loadWorkflowEnv, calendarYears, provisionalCount }, { calendarStatus }, { render }] = await Promise.all([
        import('../../store/calendar.ts'),
        import('../../workflow/calendar.ts'),
        import('../../i18n/say.ts'),
      ]);
      const db = await c.database();
      const env = await loadWorkflowEnv(db, c.config);
      const s = calendarStatus(env.calendar, env.today());
      console.log(
        `calendar ${s.years[0]}–${s.years[1]}, holidays known until ${s.covered_until} (${s.days_left} days from ${env.today()})`,
      );
      for (const y of await calendarYears(db)) console.log(`  ${y.year} added: ${y.source}`);
      const n = await provisionalCount(db, env.calendar);
      if (n) console.log(`  ${n} open deadline(s) past ${s.covered_until}: provisional, counted on weekends alone`);
      if (s.warning) console.log(`WARNING: ${render(s.warning, 'en')}`);
    });
  calendar
    .command('add <file>')
    .description(
      'add (or correct) a year from its notice: JSON {year, source, holidays, workdays}; recounts the open deadlines it changes',
    )
    .action(async (file: string) => {
      const c = context();
      const [{ loadWorkflowEnv, addCalendarYear }, { checkCalendarYear }, { readFileSync }] = await Promise.all([
        import('../../store/calendar.ts'),
        import('../../workflow/calendar.ts'),
        import('node:fs'),
      ]);
      let raw: unknown;
      try {
        raw = JSON.parse(readFileSync(file, 'utf8'));
      } catch (err) {
        const { BadInputError } = await import('../../core/errors.ts');
        throw new BadInputError('invalid_calendar', `${file}: cannot read the year (${(err as Error).message})`, {
          file,
        });
      }
      const year = checkCalendarYear(raw, file);
      const db = await c.database();
      const env = await loadWorkflowEnv(db, c.config);
      const r = await addCalendarYear(db, env, 'cli', year, c.config.TUBAN_UTC_OFFSET_H);
      console.log(
        `${year.year} added (${year.holidays.length} holidays, ${year.workdays.length} make-up working days): the calendar covers ${r.calendar.years[0]}–${r.calendar.years[1]}`,
      );
      for (const x of r.recounted) console.log(`  ${x.code} ${x.field} ${x.from_due} → ${x.to_due}`);
      console.log(`${r.recounted.length} open deadline(s) recounted`);
    });

  program
    .command('deadlines')
    .description('deadlines')
    .command('sweep')
    .description('mark overdue patches and escalate (the daily job, run now)')
    .option('--date <YYYY-MM-DD>', 'act as if today were this date', isoDate('--date'))
    .action(async (o: { date?: string }) => {
      const c = context();
      const [{ loadWorkflowEnv }, { sweepOverdue }] = await Promise.all([
        import('../../store/calendar.ts'),
        import('../../store/overdue.ts'),
      ]);
      const env = await loadWorkflowEnv(await c.database(), c.config);
      if (o.date) env.today = () => o.date!;
      const r = await sweepOverdue(await c.database(), env);
      console.log(`${env.today()}: ${r.overdue} newly overdue, ${r.escalated} escalated`);
    });
}
