import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { expect, inject, it } from 'vitest';
import { getModel } from '../store/models.ts';
import {
  ensureRunning,
  listModelsNow,
  registerModel,
  resumeTraining,
  startTraining,
  trainingProgress,
} from '../training/models.ts';
import { runBatch } from './helpers/batch.ts';
import { freshRun } from './helpers/run.ts';
import { cleanup } from './helpers/services.ts';
import { hasTorch } from './helpers/torch.ts';

/**
 * A fine-tune killed after its first checkpoint (train.py writes one a minute) goes on from it with `--resume`:
 * the steps and training time carry over, the minutes' budget counts both parts, and the run ends a candidate.
 */
it.skipIf(!hasTorch)(
  'resumes a killed fine-tune from its checkpoint (needs python3-torch; about two minutes)',
  async () => {
    const run = await freshRun(inject('fixturesDir'));
    try {
      await runBatch(run.db, run.config, '2024-03', '2024-02');
      const codes = (await run.db('patch').select('code').orderBy('code')).map((p) => p.code);
      await run.db('patch').where({ code: codes[0] }).update({ status: 'illegal', verification_result: 'illegal' });
      await run
        .db('patch')
        .where({ code: codes[2] })
        .update({ status: 'false_change', verification_result: 'false_change' });
      const env = { db: run.db, config: run.config, actor: 'test' };
      await ensureRunning(env);
      const siam = await registerModel(env, 'models/siam-unet-lite');
      await run.db('detector_model').where({ status: 'running' }).update({ status: 'retired' });
      await run.db('detector_model').where({ id: siam.id }).update({ status: 'running' });
      const bg = await startTraining(env, { since: '2024-03', steps: 1_000_000, minutes: 1.5, batch: 2, crop: 64 });
      const checkpoint = join(bg.trained_on!.runDir, 'run', 'checkpoint.pt');
      for (let i = 0; i < 600 && !existsSync(checkpoint); i++) await new Promise((r) => setTimeout(r, 500));
      expect(existsSync(checkpoint)).toBe(true);
      process.kill(-bg.trained_on!.pid!, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 500));
      const killed = (await listModelsNow(env)).find((m) => m.id === bg.id)!;
      expect(killed.status).toBe('failed');
      const atKill = trainingProgress(killed)!;
      expect(atKill.step).toBeGreaterThan(0);
      const done = await resumeTraining(env, bg.id, true);
      expect(done.status, done.trained_on?.error).toBe('candidate');
      const end = trainingProgress(done)!;
      expect(end.step).toBeGreaterThan(atKill.step);
      expect(end.seconds).toBeGreaterThanOrEqual(88); // the 1.5 minutes' budget, both parts counted
      expect((await getModel(run.db, bg.id)).sha256).toMatch(/^[0-9a-f]{64}$/);
    } finally {
      await cleanup(run.db, run.config);
    }
  },
  600_000,
);
