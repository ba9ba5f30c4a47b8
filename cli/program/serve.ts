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
  program
    .command('deadlines')
    .description('deadlines')
    .command('sweep')
    .description('mark overdue patches and escalate (the daily job, run now)')
    .option('--date <YYYY-MM-DD>', 'act as if today were this date', isoDate('--date'))
    .action(async (o: { date?: string }) => {
      const c = context();
      const [{ workflowEnv }, { sweepOverdue }] = await Promise.all([
        import('../../workflow/env.ts'),
        import('../../store/overdue.ts'),
      ]);
      const env = workflowEnv(c.config);
      if (o.date) env.today = () => o.date!;
      const r = await sweepOverdue(await c.database(), env);
      console.log(`${env.today()}: ${r.overdue} newly overdue, ${r.escalated} escalated`);
    });
}
