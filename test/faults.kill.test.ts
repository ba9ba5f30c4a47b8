import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadManifest } from '../pipeline/io/model.manifest.ts';
import { launchBatch, waitForBatch } from '../workers/batch.launch.ts';
import { runBatch } from './helpers/batch.ts';
import { firstEvent, sleep, WorkerProc } from './helpers/procs.ts';
import { freshRun, type Run } from './helpers/run.ts';
import { cleanup, isolatedConfig, migratedDb } from './helpers/services.ts';
import { loadFixtureLayers } from './helpers/batch.ts';
import { registerImagery } from '../imagery/register.ts';
import { join } from 'node:path';
import { patchSnapshot } from './helpers/snapshot.ts';

/**
 * Fault injection with real worker processes on real PostgreSQL and Redis: a worker is killed
 * with SIGKILL in the middle of each stage, at several moments; BullMQ's stalled-job recovery
 * hands the job to another worker, and the final patch table must equal an undisturbed run's,
 * row by row. TUBAN_FAULT_PAUSE holds each stage at its fragile point for 2.5 s (results computed, not yet
 * committed) so the kill lands inside the stage, and the test checks that it did.
 */
const FAST_RECOVERY = { TUBAN_LOCK_MS: '3000', TUBAN_STALLED_INTERVAL_MS: '1000', TUBAN_STOP_TIMEOUT_MS: '20000' };
const manifest = loadManifest('models/cva-baseline').manifest;

const DETECT = { stage: 'detect', started: 'Part:DetectStarted', finished: 'Part:Detected' } as const;
const VECTORIZE = { stage: 'vectorize', started: 'Part:Detected', finished: 'Part:Vectorized' } as const;
const CANDIDATES = { stage: 'candidates', started: 'Batch:DiffStarted', finished: 'Batch:Completed' } as const;
const EMIT = { stage: 'emit', started: 'Batch:DiffStarted', finished: 'Batch:Completed' } as const;
const DIFF = { stage: 'diff', started: 'Batch:DiffStarted', finished: 'Batch:Completed' } as const;
/**
 * 25 kill points: in detect (the model's result not yet stored), in vectorize/store (polygons
 * written, not committed), in the diff with its candidates' slices written and not committed, before
 * emit and after it (before the commit), at several jobs and moments; and during retries: the worker
 * that took over a killed job killed in turn.
 */
const SCENARIOS: { stage: string; started: string; finished: string; nth: number; delayMs: number; again?: number }[] =
  [
    { ...DETECT, nth: 1, delayMs: 300 },
    { ...DETECT, nth: 2, delayMs: 1300 },
    { ...DETECT, nth: 3, delayMs: 700 },
    { ...DETECT, nth: 4, delayMs: 2200 },
    { ...DETECT, nth: 1, delayMs: 1800 },
    { ...VECTORIZE, nth: 1, delayMs: 30 },
    { ...VECTORIZE, nth: 2, delayMs: 600 },
    { ...VECTORIZE, nth: 3, delayMs: 1000 },
    { ...VECTORIZE, nth: 4, delayMs: 1300 },
    { ...VECTORIZE, nth: 1, delayMs: 2000 },
    { ...CANDIDATES, nth: 1, delayMs: 700 },
    { ...CANDIDATES, nth: 1, delayMs: 1800 },
    { ...EMIT, nth: 1, delayMs: 100 },
    { ...EMIT, nth: 1, delayMs: 1200 },
    { ...EMIT, nth: 1, delayMs: 2200 },
    { ...DIFF, nth: 1, delayMs: 100 },
    { ...DIFF, nth: 1, delayMs: 900 },
    { ...DIFF, nth: 1, delayMs: 1800 },
    { ...DETECT, nth: 1, delayMs: 500, again: 300 },
    { ...DETECT, nth: 2, delayMs: 1000, again: 1500 },
    { ...VECTORIZE, nth: 1, delayMs: 200, again: 400 },
    { ...VECTORIZE, nth: 3, delayMs: 800, again: 100 },
    { ...CANDIDATES, nth: 1, delayMs: 500, again: 700 },
    { ...EMIT, nth: 1, delayMs: 500, again: 800 },
    { ...DIFF, nth: 1, delayMs: 600, again: 600 },
  ];

describe('killed workers', () => {
  const fixturesDir = inject('fixturesDir');
  let reference: Record<string, unknown>[];
  const runs: Run[] = [];
  const procs: WorkerProc[] = [];

  beforeAll(async () => {
    const ref = await freshRun(fixturesDir);
    runs.push(ref);
    const s = await runBatch(ref.db, ref.config, '2024-03', '2024-02');
    expect(s.patches.new).toBe(5);
    reference = await patchSnapshot(ref.db);
  });
  afterAll(async () => {
    for (const p of procs) p.kill('SIGKILL');
    for (const r of runs) await cleanup(r.db, r.config);
  });

  /** Waits until the workers together have logged `name` n times; returns the worker and event of the n-th. */
  async function nthEvent(workers: WorkerProc[], name: string, n: number, timeoutMs = 90_000) {
    const t0 = Date.now();
    for (;;) {
      const all = workers.flatMap((w) => w.events.filter((e) => e.event === name).map((e) => ({ w, e })));
      all.sort((a, b) => String(a.e.time).localeCompare(String(b.e.time)));
      if (all.length >= n) return { worker: all[n - 1].w, event: all[n - 1].e };
      if (Date.now() - t0 > timeoutMs) throw new Error(`only ${all.length} ${name} events within ${timeoutMs} ms`);
      await sleep(20);
    }
  }

  for (const sc of SCENARIOS) {
    const retry = sc.again === undefined ? '' : `, then its retry ${sc.again} ms in`;
    it(`SIGKILL during ${sc.stage} (#${sc.nth} job, ${sc.delayMs} ms in${retry}) ends with the reference patches`, async () => {
      const run = await freshRun(fixturesDir, { ...FAST_RECOVERY, TUBAN_FAULT_PAUSE: `${sc.stage}:2500` });
      runs.push(run);
      const workers = [new WorkerProc(run.env), new WorkerProc(run.env)];
      procs.push(...workers);
      await Promise.all(workers.map((w) => w.next((e) => e.event === 'Worker:Started')));
      const { batch } = await launchBatch(run.db, run.config, manifest, '2024-03', '2024-02');

      const { worker: victim, event } = await nthEvent(workers, sc.started, sc.nth);
      await sleep(sc.delayMs);
      victim.kill('SIGKILL');
      await victim.exited();
      // The kill must have landed inside the stage: the victim never finished that job.
      const finishedBeforeKill = victim.events.some(
        (e) => e.event === sc.finished && (sc.stage === 'diff' || e.imageryId === event.imageryId),
      );
      expect(finishedBeforeKill, `${sc.stage} finished before the kill`).toBe(false);
      const replacement = new WorkerProc(run.env);
      procs.push(replacement);
      const all = [...workers, replacement];
      if (sc.again !== undefined) {
        // the job comes back to a live worker as its second try (it logs that the last worker died); kill that one too
        const retried = sc.stage === 'detect' || sc.stage === 'vectorize' ? 'Part:WorkerDied' : 'Batch:DiffWorkerDied';
        const { worker: second } = await firstEvent(
          all.filter((w) => w !== victim),
          (e) => e.event === retried,
          90_000,
        );
        await sleep(sc.again);
        second.kill('SIGKILL');
        await second.exited();
        const third = new WorkerProc(run.env);
        procs.push(third);
        all.push(third);
      }

      const done = await waitForBatch(run.db, batch.id, () => {}, { timeoutMs: 180_000 });
      expect(done.status).toBe('completed');
      expect(await patchSnapshot(run.db)).toEqual(reference);
      for (const w of all) w.kill('SIGKILL');
    });
  }

  it('SIGTERM lets the job in hand finish, then the worker exits; nothing is half-written', async () => {
    const run = await freshRun(fixturesDir, { ...FAST_RECOVERY, TUBAN_FAULT_PAUSE: 'detect:2000' });
    runs.push(run);
    const w = new WorkerProc(run.env);
    procs.push(w);
    await w.next((e) => e.event === 'Worker:Started');
    const { batch } = await launchBatch(run.db, run.config, manifest, '2024-03', '2024-02');
    const started = await w.next((e) => e.event === 'Part:DetectStarted');
    await sleep(500);
    const t0 = Date.now();
    w.kill('SIGTERM');
    expect(await w.exited()).toBe(0);
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(w.events.some((e) => e.event === 'Part:Vectorized' && e.imageryId === started.imageryId)).toBe(true);
    const tile = await run.db('batch_tile').where({ batch_id: batch.id, imagery_id: started.imageryId }).first();
    expect(tile.status).toBe('vectorized');
    const next = new WorkerProc(run.env);
    procs.push(next);
    const done = await waitForBatch(run.db, batch.id, () => {}, { timeoutMs: 120_000 });
    expect(done.status).toBe('completed');
    expect(await patchSnapshot(run.db)).toEqual(reference);
    next.kill('SIGKILL');
  });
});

/**
 * The review's reliability finding: a part whose worker is killed again and again. One scene
 * (one part), each worker held in detect and killed there; the job has TUBAN_JOB_ATTEMPTS tries
 * however they end, and the batch records that the worker died, not a misleading "did not finish".
 */
describe('a part whose worker keeps dying', () => {
  const fixturesDir = inject('fixturesDir');
  const runs: Run[] = [];
  const procs: WorkerProc[] = [];
  afterAll(async () => {
    for (const p of procs) p.kill('SIGKILL');
    for (const r of runs) await cleanup(r.db, r.config);
  });

  /** A run with one scene in each month, workers that pause in detect, `kills` kills, then `last` starts a worker with `lastEnv`. */
  async function killRepeatedly(attempts: number, kills: number, lastEnv: Record<string, string>) {
    const config = isolatedConfig({ ...FAST_RECOVERY, TUBAN_JOB_ATTEMPTS: String(attempts) });
    const db = await migratedDb(config);
    const run: Run = {
      config,
      db,
      env: {
        ...process.env,
        DATABASE_URL: config.DATABASE_URL,
        REDIS_URL: config.REDIS_URL,
        TUBAN_DB_SCHEMA: config.TUBAN_DB_SCHEMA,
        TUBAN_MODEL_DIR: config.TUBAN_MODEL_DIR,
        TUBAN_QUEUE_PREFIX: config.TUBAN_QUEUE_PREFIX,
        TUBAN_DATA_DIR: config.dataDir,
        ...FAST_RECOVERY,
        TUBAN_JOB_ATTEMPTS: String(attempts),
      },
    };
    runs.push(run);
    await loadFixtureLayers(db, fixturesDir);
    for (const [month, date] of [
      ['2024-02', '2024-02-10'],
      ['2024-03', '2024-03-15'],
    ]) {
      const r = await registerImagery(db, config, month, [join(fixturesDir, 'imagery', month, 'r0c0.tif')], date);
      expect(r.refused).toEqual([]);
    }
    const held = { ...run.env, TUBAN_FAULT_PAUSE: 'detect:30000' };
    const first = new WorkerProc(held);
    procs.push(first);
    await first.next((e) => e.event === 'Worker:Started');
    const { batch } = await launchBatch(db, config, manifest, '2024-03', '2024-02');
    let w = first;
    for (let k = 0; k < kills; k++) {
      if (k > 0) {
        w = new WorkerProc(held);
        procs.push(w);
      }
      await w.next((e) => e.event === 'Part:DetectStarted', 90_000);
      await sleep(1000);
      w.kill('SIGKILL');
      await w.exited();
    }
    const last = new WorkerProc({ ...run.env, ...lastEnv });
    procs.push(last);
    const done = await waitForBatch(db, batch.id, () => {}, { timeoutMs: 180_000 });
    last.kill('SIGKILL');
    const tile = await db('batch_tile').where({ batch_id: batch.id }).first();
    return { done, tile, last };
  }

  it('is retried after each death while tries remain, and completes', async () => {
    // three deaths used to end it for good (BullMQ's stall limit of 2), whatever TUBAN_JOB_ATTEMPTS said
    const { done, tile, last } = await killRepeatedly(4, 3, {});
    expect(done.status).toBe('completed');
    expect(tile.status).toBe('vectorized');
    expect(last.events.find((e) => e.event === 'Part:WorkerDied')).toMatchObject({ died: 3, attempt: 4, of: 4 });
  });

  it('fails with the real reason once its tries are used', async () => {
    const { done, tile } = await killRepeatedly(3, 3, { TUBAN_FAULT_PAUSE: 'detect:30000' });
    expect(done.status).toBe('failed');
    expect(tile).toMatchObject({ status: 'failed', error_code: 'worker_died' });
    expect(tile.error_message).toMatch(
      /the worker running this part died 3 time\(s\) \(killed, or out of memory\).*3 tries \(TUBAN_JOB_ATTEMPTS\) used/,
    );
  });

  it('logs Worker:Started before it takes its first job', async () => {
    const run = await freshRun(fixturesDir);
    runs.push(run);
    await launchBatch(run.db, run.config, manifest, '2024-03', '2024-02');
    // the jobs are already waiting when the worker starts
    const w = new WorkerProc(run.env);
    procs.push(w);
    await w.next((e) => e.event === 'Part:DetectStarted', 90_000);
    const names = w.events.map((e) => e.event);
    expect(names.indexOf('Worker:Started')).toBeGreaterThanOrEqual(0);
    expect(names.indexOf('Worker:Started')).toBeLessThan(names.indexOf('Part:DetectStarted'));
    w.kill('SIGKILL');
  });
});
