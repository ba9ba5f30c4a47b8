import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadManifest } from '../pipeline/io/model.manifest.ts';
import { ConflictError } from '../core/errors.ts';
import { launchBatch, waitForBatch } from '../workers/batch.launch.ts';
import { runBatch } from './helpers/batch.ts';
import { sleep, WorkerProc } from './helpers/procs.ts';
import { freshRun, type Run } from './helpers/run.ts';
import { freePort, ThrowawayPostgres, ThrowawayRedis } from './helpers/servers.ts';
import { cleanup } from './helpers/services.ts';
import { patchSnapshot } from './helpers/snapshot.ts';

/**
 * Servers restarting under a running batch, and batches launched side by side. The restarted
 * servers are throwaway instances this test starts on other ports; the machine's shared
 * PostgreSQL and Redis are never stopped.
 */
const FAST = { TUBAN_LOCK_MS: '3000', TUBAN_STALLED_INTERVAL_MS: '1000' };
const manifest = loadManifest('models/cva-baseline').manifest;

describe('restarts and concurrency', () => {
  const fixturesDir = inject('fixturesDir');
  let reference: Record<string, unknown>[];
  const runs: Run[] = [];
  const procs: WorkerProc[] = [];
  const cleanups: (() => Promise<void> | void)[] = [];

  beforeAll(async () => {
    const ref = await freshRun(fixturesDir);
    runs.push(ref);
    await runBatch(ref.db, ref.config, '2024-03', '2024-02');
    reference = await patchSnapshot(ref.db);
  });
  afterAll(async () => {
    for (const p of procs) p.kill('SIGKILL');
    for (const r of runs) await cleanup(r.db, r.config).catch(() => {});
    for (const c of cleanups) await c();
  });

  /**
   * One worker process on a fresh run; `disturb` is called once the first tile is detected. The
   * batch must then complete with the reference patches and the worker still be running (no crash loop).
   */
  async function batchSurvives(overrides: Record<string, string>, disturb: () => Promise<void> | void) {
    const run = await freshRun(fixturesDir, { ...FAST, TUBAN_FAULT_PAUSE: 'detect:800', ...overrides });
    runs.push(run);
    const w = new WorkerProc(run.env);
    procs.push(w);
    await w.next((e) => e.event === 'Worker:Started');
    const { batch } = await launchBatch(run.db, run.config, manifest, '2024-03', '2024-02');
    await w.next((e) => e.event === 'Part:Detected');
    await disturb();
    const done = await waitForBatch(run.db, batch.id, () => {}, { timeoutMs: 120_000 });
    expect(done.status).toBe('completed');
    expect(await patchSnapshot(run.db)).toEqual(reference);
    expect(w.proc.exitCode).toBeNull();
    w.kill('SIGKILL');
  }

  it('survives a Redis restart mid-batch: workers reconnect, no job is lost', async () => {
    const redis = new ThrowawayRedis(await freePort());
    cleanups.push(() => redis.destroy());
    await redis.start();
    await batchSurvives({ REDIS_URL: redis.url }, async () => {
      await redis.stop();
      await sleep(1500);
      await redis.start();
    });
  });

  it('survives a PostgreSQL restart mid-batch: jobs retry with backoff and resume', async () => {
    const pg = new ThrowawayPostgres(await freePort());
    cleanups.push(() => pg.destroy());
    pg.init();
    pg.start();
    await batchSurvives({ DATABASE_URL: pg.url, TUBAN_JOB_ATTEMPTS: '5' }, () => pg.restart());
  });

  it('resumes a batch whose queued jobs were lost with a Redis that keeps nothing', async () => {
    const redis = new ThrowawayRedis(await freePort());
    cleanups.push(() => redis.destroy());
    await redis.start();
    const run = await freshRun(fixturesDir, { ...FAST, REDIS_URL: redis.url });
    runs.push(run);
    const { batch } = await launchBatch(run.db, run.config, manifest, '2024-03', '2024-02');
    // No worker yet: the jobs sit in Redis. Lose them all, as a restart without persistence would.
    const { execFileSync } = await import('node:child_process');
    execFileSync('redis-cli', ['-p', String(redis.port), 'flushall']);
    const { resumeBatch } = await import('../workers/batch.launch.ts');
    expect(await resumeBatch(run.db, run.config, batch.id)).toEqual({ requeued: 4 });
    const w = new WorkerProc(run.env);
    procs.push(w);
    const done = await waitForBatch(run.db, batch.id, () => {}, { timeoutMs: 120_000 });
    expect(done.status).toBe('completed');
    expect(await patchSnapshot(run.db)).toEqual(reference);
    await expect(resumeBatch(run.db, run.config, batch.id)).rejects.toThrow(
      /is completed; only a queued or running batch/,
    );
    w.kill('SIGKILL');
  });

  it('refuses a second launch of a month that is running, and runs two months side by side', async () => {
    const run = await freshRun(fixturesDir);
    runs.push(run);
    // 2024-04 is 2024-03's pixels again: compared with 2024-03 it has no change.
    const { registerImagery } = await import('../imagery/register.ts');
    const { copyMonth } = await import('./helpers/batch.ts');
    const dir = `${run.config.dataDir}/2024-04`;
    copyMonth(fixturesDir, '2024-03', dir);
    await registerImagery(run.db, run.config, '2024-04', [dir]);

    const launches = await Promise.allSettled([
      launchBatch(run.db, run.config, manifest, '2024-03', '2024-02'),
      launchBatch(run.db, run.config, manifest, '2024-03', '2024-02'),
    ]);
    const ok = launches.filter((l) => l.status === 'fulfilled');
    const refused = launches.filter((l) => l.status === 'rejected') as PromiseRejectedResult[];
    expect(ok).toHaveLength(1);
    expect(refused).toHaveLength(1);
    expect(refused[0].reason).toBeInstanceOf(ConflictError);
    expect(refused[0].reason.message).toMatch(/month 2024-03 already has batch \d+/);
    const other = await launchBatch(run.db, run.config, manifest, '2024-04', '2024-03');

    const workers = [new WorkerProc(run.env), new WorkerProc(run.env)];
    procs.push(...workers);
    const first = (ok[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof launchBatch>>>).value.batch.id;
    const [a, b] = await Promise.all([
      waitForBatch(run.db, first, () => {}, { timeoutMs: 120_000 }),
      waitForBatch(run.db, other.batch.id, () => {}, { timeoutMs: 120_000 }),
    ]);
    expect(a.status).toBe('completed');
    expect(b.status).toBe('completed');
    expect(a.summary!.patches.new).toBe(5);
    expect(b.summary!.patches.new).toBe(0);
    expect(await patchSnapshot(run.db)).toEqual(reference.map((r) => ({ ...r, observations: r.observations })));
    for (const w of workers) w.kill('SIGKILL');
  });
});
