import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadManifest } from '../pipeline/model.manifest.ts';
import { launchBatch, waitForBatch } from '../workers/batch.launch.ts';
import { runBatch } from './helpers/batch.ts';
import { sleep, WorkerProc } from './helpers/procs.ts';
import { freshRun, type Run } from './helpers/run.ts';
import { cleanup } from './helpers/services.ts';
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

const SCENARIOS = [
  { stage: 'detect', started: 'Tile:DetectStarted', finished: 'Tile:Detected', nth: 1, delayMs: 300 },
  { stage: 'detect', started: 'Tile:DetectStarted', finished: 'Tile:Detected', nth: 2, delayMs: 1300 },
  { stage: 'detect', started: 'Tile:DetectStarted', finished: 'Tile:Detected', nth: 4, delayMs: 2200 },
  { stage: 'vectorize', started: 'Tile:Detected', finished: 'Tile:Vectorized', nth: 1, delayMs: 30 },
  { stage: 'vectorize', started: 'Tile:Detected', finished: 'Tile:Vectorized', nth: 2, delayMs: 600 },
  { stage: 'vectorize', started: 'Tile:Detected', finished: 'Tile:Vectorized', nth: 4, delayMs: 1300 },
  { stage: 'diff', started: 'Batch:DiffStarted', finished: 'Batch:Completed', nth: 1, delayMs: 100 },
  { stage: 'diff', started: 'Batch:DiffStarted', finished: 'Batch:Completed', nth: 1, delayMs: 900 },
  { stage: 'diff', started: 'Batch:DiffStarted', finished: 'Batch:Completed', nth: 1, delayMs: 1800 },
] as const;

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
    it(`SIGKILL during ${sc.stage} (#${sc.nth} job, ${sc.delayMs} ms in) ends with the reference patches`, async () => {
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
      const finishedBeforeKill = victim.events.some((e) => e.event === sc.finished && (sc.stage === 'diff' || e.imageryId === event.imageryId));
      expect(finishedBeforeKill, `${sc.stage} finished before the kill`).toBe(false);
      const replacement = new WorkerProc(run.env);
      procs.push(replacement);

      const done = await waitForBatch(run.db, batch.id, () => {}, { timeoutMs: 120_000 });
      expect(done.status).toBe('completed');
      expect(await patchSnapshot(run.db)).toEqual(reference);
      for (const w of [...workers, replacement]) w.kill('SIGKILL');
    });
  }

  it('SIGTERM lets the job in hand finish, then the worker exits; nothing is half-written', async () => {
    const run = await freshRun(fixturesDir, { ...FAST_RECOVERY, TUBAN_FAULT_PAUSE: 'detect:2000' });
    runs.push(run);
    const w = new WorkerProc(run.env);
    procs.push(w);
    await w.next((e) => e.event === 'Worker:Started');
    const { batch } = await launchBatch(run.db, run.config, manifest, '2024-03', '2024-02');
    const started = await w.next((e) => e.event === 'Tile:DetectStarted');
    await sleep(500);
    const t0 = Date.now();
    w.kill('SIGTERM');
    expect(await w.exited()).toBe(0);
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(w.events.some((e) => e.event === 'Tile:Vectorized' && e.imageryId === started.imageryId)).toBe(true);
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
