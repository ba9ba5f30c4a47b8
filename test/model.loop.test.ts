import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { chipBounds, exportTrainingChips, type ChipRow } from '../training/chips.ts';
import {
  evaluateModel,
  evaluationText,
  promoteModel,
  promotionVerdict,
  type ModelFigures,
} from '../training/evaluate.ts';
import {
  batchModelDir,
  ensureRunning,
  registerModel,
  listModelsNow,
  resumeTraining,
  rollbackModel,
  startTraining,
  type ModelEnv,
} from '../training/models.ts';
import { findModel, getModel, modelEvents, runningModel } from '../store/models.ts';
import { modelShelf } from '../workers/models.ts';
import { runBatch } from './helpers/batch.ts';
import { freshRun, type Run } from './helpers/run.ts';
import { cleanup } from './helpers/services.ts';
import { hasTorch } from './helpers/torch.ts';
import { apiCaller, testWorkflowEnv } from './helpers/api.ts';
import { buildServer } from '../server/app.ts';
import { createUser, issueToken } from '../store/users.ts';

/** A copy of the fixtures' model under another version that sees no change (its inputs scaled to nothing): a model known to be worse. */
function blindCopy(root: string, version: string): string {
  const dir = join(root, version);
  cpSync('models/cva-baseline', dir, { recursive: true });
  const path = join(dir, 'manifest.json');
  const m = JSON.parse(readFileSync(path, 'utf8'));
  writeFileSync(path, JSON.stringify({ ...m, version, normalisation: { mean: [0, 0, 0], std: [1e6, 1e6, 1e6] } }));
  return dir;
}

/**
 * The learning loop on the fixtures: the March batch's patches get verdicts (two confirmed buildings, a false
 * change, a shadow), a fine-tune of a few steps runs in its own process, the held-out month decides promotions,
 * and a rollback puts the model before back.
 */
describe('tuban model: train, evaluate, promote, roll back', () => {
  const fixturesDir = inject('fixturesDir');
  let run: Run;
  let env: ModelEnv;
  let work: string;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'tuban-models-'));
    run = await freshRun(fixturesDir);
    await runBatch(run.db, run.config, '2024-03', '2024-02');
    const patches = await run.db('patch').select('code').orderBy('code');
    const [illegal, legal, falseChange, shadow] = patches.map((p) => p.code);
    const set = (code: string, fields: Record<string, unknown>) => run.db('patch').where({ code }).update(fields);
    await set(illegal, { status: 'illegal', verification_result: 'illegal' });
    await set(legal, { status: 'legal', verification_result: 'legal', permit_ref: 'P-1' });
    await set(falseChange, { status: 'false_change', verification_result: 'false_change' });
    await set(shadow, { status: 'dismissed', dismiss_reason: 'shadow' });
    // the shared validation set: the month's own chips, labelled by the verdicts
    const shared = join(work, 'shared-set');
    await exportTrainingChips(run.db, { month: '2024-03', outDir: shared });
    env = { db: run.db, config: { ...run.config, TUBAN_MODEL_VALIDATION: shared }, actor: 'test' };
  }, 300_000);
  /** Makes `id` the running model and sets the others aside, whatever an earlier test left (test set-up only). */
  const runOnly = async (id: number) => {
    await run.db('detector_model').whereNot({ id }).where({ status: 'running' }).update({ status: 'retired' });
    await run.db('detector_model').where({ id }).update({ status: 'running' });
  };
  afterAll(async () => {
    rmSync(work, { recursive: true, force: true });
    await cleanup(run.db, run.config);
  });

  it('registers the configured model as the first running one, and batches take the register’s model', async () => {
    // a register of its own, empty whatever the other tests did
    const own = await freshRun(fixturesDir);
    try {
      const e = { ...env, db: own.db, config: own.config };
      expect(await batchModelDir(own.db, own.config)).toEqual({ dir: own.config.modelDir, from: 'config' });
      const first = await ensureRunning(e);
      expect(first).toMatchObject({ name: 'cva-baseline', status: 'running' });
      expect(first.dir).toBe(join(own.config.dataDir, 'models', 'cva-baseline', '1.0.0'));
      expect(existsSync(join(first.dir, 'manifest.json'))).toBe(true);
      expect(await batchModelDir(own.db, own.config)).toEqual({ dir: first.dir, from: 'register' });
      expect((await ensureRunning(e)).id).toBe(first.id);
      // the first model cannot be fine-tuned (no weights) and has nothing to roll back to
      await expect(startTraining(e, { since: '2024-03' })).rejects.toThrow(/cannot be fine-tuned: .* no weights\.npz/);
      await expect(rollbackModel(e)).rejects.toThrow(/first model in the register/);
    } finally {
      await cleanup(own.db, own.config);
    }
  }, 300_000);

  it('loads a batch’s model from the register in a worker started with another, and refuses odd names', async () => {
    const running = await ensureRunning(env);
    for (const name of ['../evil', 'a/b', '..', 'x\nrm -rf ~']) {
      const dir = blindCopy(work, `odd-${Math.random().toString(36).slice(2)}`);
      const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
      writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ ...m, name }));
      await expect(registerModel(env, dir)).rejects.toThrow(/manifest\.json: name .* may hold only letters, digits/);
    }
    // a worker started with another model loads the batch's model from the register, and names one it lacks
    const shelf = modelShelf(run.db, run.config);
    try {
      expect((await shelf.named(running.name, running.version)).manifest).toMatchObject({
        name: running.name,
        version: running.version,
      });
      await expect(shelf.named('nobody', '9.9')).rejects.toThrow(/the batch ran nobody 9\.9, which this worker/);
    } finally {
      await shelf.close();
    }
  });

  it('promotes a better candidate, refuses a worse one with the figures, and rolls back', async () => {
    await ensureRunning(env);
    // a blind model runs; the model that made the patches is the candidate: it finds the confirmed buildings
    await ensureRunning(env);
    // the fixtures' model, registered first by whichever test ran first
    const first = (await findModel(run.db, 'cva-baseline', '1.0.0'))!;
    const blind = await registerModel(env, blindCopy(work, 'blind'));
    await runOnly(blind.id);
    await run.db('detector_model').where({ id: first.id }).update({ status: 'candidate', evaluation: null });
    const good = await getModel(run.db, first.id);
    // what this test adds to its history (another test may have moved it before)
    const earlier = (await modelEvents(run.db, good.id)).length;
    await expect(promoteModel(env, good.id)).rejects.toThrow(/has not been evaluated/);
    const ev = await evaluateModel(env, { month: '2024-03', id: good.id });
    expect(ev.running.heldOut).toMatchObject({ confirmed: 2, dismissed: 2, found: 0, score: 0 });
    // it flags all four patches it made: both buildings, and the two the towns dismissed
    expect(ev.candidate.heldOut).toMatchObject({
      confirmed: 2,
      found: 2,
      falseFlagged: 2,
      falseShare: 0.5,
      score: 0.667,
    });
    // what it flags where no town looked is shown beside the rule (the blind model flags nothing anywhere)
    expect(ev.running.heldOut.unjudgedFlagged).toBe(0);
    expect(ev.candidate.heldOut.unjudgedFlagged).toBeGreaterThanOrEqual(0);
    expect(ev.candidate.heldOut.unjudgedFlagged).toBeLessThan(0.5);
    expect(evaluationText(ev)).toMatch(/unjudged: share of the chips' ground no town judged/);
    expect(ev.candidate.validation).toHaveLength(1);
    expect(ev.verdict.promote).toBe(true);
    const p = await promoteModel(env, good.id);
    expect(p.promoted).toMatchObject({ id: good.id, status: 'running' });
    expect(p.replaced).toMatchObject({ id: blind.id, status: 'retired' });
    expect((await runningModel(run.db))?.id).toBe(good.id);

    // a candidate that flags nothing is refused against it, the figures in the refusal and the history
    const worse = await registerModel(env, blindCopy(work, 'blind2'));
    const ev2 = await evaluateModel(env, { month: '2024-03', id: worse.id });
    expect(ev2.verdict.promote).toBe(false);
    await expect(promoteModel(env, worse.id)).rejects.toThrow(
      /refused:\n {2}held-out month does not improve: score 0\.000/,
    );
    expect((await modelEvents(run.db, worse.id)).map((e) => e.action)).toEqual(['registered', 'evaluated', 'refused']);
    expect((await getModel(run.db, worse.id)).status).toBe('candidate');
    expect((await runningModel(run.db))?.id).toBe(good.id);

    // rollback: the model the promotion replaced runs again
    const r = await rollbackModel(env, 'towns report misses');
    expect(r.to).toMatchObject({ id: blind.id, status: 'running' });
    expect(r.from).toMatchObject({ id: good.id, status: 'retired' });
    expect(await batchModelDir(run.db, run.config)).toEqual({ dir: blind.dir, from: 'register' });
    const history = (await modelEvents(run.db, good.id)).slice(earlier);
    expect(history.map((e) => e.action)).toEqual(['evaluated', 'promoted', 'rolled_back']);
    expect(history[2].detail).toMatchObject({ to: blind.id, reason: 'towns report misses' });
    // the model set aside can be evaluated and promoted again; a second rollback goes one further back
    const again = await evaluateModel(env, { month: '2024-03', id: good.id });
    expect(again.running.id).toBe(blind.id);
    expect((await promoteModel(env, good.id)).promoted.status).toBe('running');
    expect((await rollbackModel(env)).to.id).toBe(blind.id);
    await expect(rollbackModel(env)).rejects.toThrow(/first model in the register/);
  }, 600_000);

  it('refuses the same version with another model file', async () => {
    await ensureRunning(env);
    const dir = blindCopy(work, 'other');
    await registerModel(env, dir);
    writeFileSync(join(dir, 'model.onnx'), 'not the same');
    const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ ...m, sha256: '0'.repeat(64) }));
    await expect(registerModel(env, dir)).rejects.toThrow(/already in the register with another model\.onnx/);
  });

  it.skipIf(!hasTorch)(
    'fine-tunes the running model for a few steps in its own process and registers the candidate (needs python3-torch)',
    async () => {
      await ensureRunning(env);
      const siam = await registerModel(env, 'models/siam-unet-lite');
      await runOnly(siam.id);
      const running = await getModel(run.db, siam.id);
      await expect(startTraining(env, { since: '2024-01', until: '2024-02' })).rejects.toThrow(/nothing to learn from/);
      await expect(startTraining(env, { since: '2024-03', anchor: -1 })).rejects.toThrow(
        /--anchor -1: expected a number from 0 to 1000/,
      );
      // anchored to the running model's weights (train.py --anchor), as its card says
      const t = await startTraining(env, { since: '2024-03', steps: 3, batch: 2, crop: 64, anchor: 0.5, wait: true });
      expect(t.trained_on?.error).toBeUndefined();
      expect(t).toMatchObject({
        status: 'candidate',
        parent_id: running.id,
        version: expect.stringMatching(/^2\.3\.1\+city\.\d+$/),
      });
      expect(t.trained_on).toMatchObject({ since: '2024-03', until: '2024-03', chips: 4, positives: 2, negatives: 2 });
      const manifest = JSON.parse(readFileSync(join(t.dir, 'manifest.json'), 'utf8'));
      expect(manifest).toMatchObject({ version: t.version, defaultThreshold: running.card?.defaultThreshold });
      expect(manifest.provenance.initialisedFrom).toBe(join(running.dir, 'weights.npz'));
      expect(manifest.provenance.steps).toBe(3);
      expect(manifest.provenance.anchor).toBe(0.5);
      expect(t.sha256).toBe(manifest.sha256);
      expect((await modelEvents(run.db, t.id)).map((e) => e.action)).toEqual(['train_started', 'trained']);
      // the month it learned from is not a held-out month
      await expect(evaluateModel(env, { month: '2024-03', id: t.id })).rejects.toThrow(
        /trained on the verdicts of 2024-03…2024-03/,
      );
    },
    300_000,
  );

  it.skipIf(!hasTorch)(
    'trains in the background: the list shows it training, a killed run is failed and names how to go on',
    async () => {
      await ensureRunning(env);
      const siam = await registerModel(env, 'models/siam-unet-lite');
      await runOnly(siam.id);
      const bg = await startTraining(env, { since: '2024-03', steps: 100000, minutes: 30, batch: 2, crop: 64 });
      expect(bg.status).toBe('training');
      const pid = bg.trained_on!.pid!;
      // the command has returned; the run goes on in its own process group
      expect(() => process.kill(pid, 0)).not.toThrow();
      expect((await listModelsNow(env)).find((m) => m.id === bg.id)?.status).toBe('training');
      process.kill(-pid, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 500));
      const dead = (await listModelsNow(env)).find((m) => m.id === bg.id)!;
      expect(dead.status).toBe('failed');
      expect(dead.trained_on?.error).toMatch(
        new RegExp(`ended without an exit status .*tuban model train --resume ${bg.id}`),
      );
      // killed before its first checkpoint (a minute in): nothing to go on from
      await expect(resumeTraining(env, bg.id)).rejects.toThrow(
        /checkpoint\.pt not found: the run stopped before its first checkpoint/,
      );
      expect((await modelEvents(run.db, bg.id)).map((e) => e.action)).toEqual(['train_started', 'train_failed']);
    },
    300_000,
  );

  it('answers on the command line: list, show, and refusals that name the option', async () => {
    await ensureRunning(env);
    const tuban = (...args: string[]) =>
      spawnSync(process.execPath, ['bin/tuban.mjs', 'model', ...args], {
        env: run.env,
        encoding: 'utf8',
        timeout: 300_000,
      });
    const list = tuban('list');
    expect(list.status, list.stderr).toBe(0);
    expect(list.stdout.split('\n')[0]).toBe('id\tmodel\tstate\ttrained on\theld-out\tpromoted');
    expect(list.stdout).toMatch(/\tcva-baseline 1\.0\.0\t/);
    const json = JSON.parse(tuban('list', '--json').stdout) as { id: number; status: string }[];
    expect(json.filter((m) => m.status === 'running')).toHaveLength(1);
    const show = JSON.parse(tuban('show', String(json[0].id)).stdout);
    expect(show.history[0]).toMatchObject({ action: 'registered' });
    const bad = tuban('evaluate', '--month', '2024-3');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/month "2024-3" is not a month/);
    const noSince = tuban('train');
    expect(noSince.status).toBe(2);
    expect(noSince.stderr).toMatch(/--since is required/);
  }, 300_000);

  it('answers admins over the API, and no one else', async () => {
    const first = (await findModel(run.db, 'cva-baseline', '1.0.0')) ?? (await ensureRunning(env));
    await runOnly(first.id);
    const token: Record<string, string> = {};
    for (const [username, role, townCode] of [
      ['model-admin', 'admin', undefined],
      ['model-super', 'supervisor', undefined],
      ['model-town', 'town', '350206001'],
    ] as const) {
      await createUser(run.db, { username, role, townCode });
      token[username] = (await issueToken(run.db, username, 'test', 1)).token;
    }
    const app = await buildServer({ db: run.db, config: env.config, env: testWorkflowEnv(() => '2024-04-01') });
    try {
      const call = apiCaller(() => app, token);
      const list = await call('model-super', 'GET', '/api/models');
      expect(list.statusCode, list.body).toBe(200);
      expect(list.json().find((m: { id: number }) => m.id === Number(first.id))).toMatchObject({ status: 'running' });
      expect((await call('model-town', 'GET', '/api/models')).statusCode).toBe(403);
      expect((await call('model-super', 'POST', `/api/models/${first.id}/promote`)).statusCode).toBe(403);
      const cand = await registerModel(env, blindCopy(work, 'api-candidate'));
      const refused = await call('model-admin', 'POST', `/api/models/${cand.id}/promote`);
      expect(refused.statusCode).toBe(409);
      expect(refused.json().message).toMatch(/has not been evaluated/);
      expect((await call('model-admin', 'POST', '/api/models/x1/promote')).statusCode).toBe(400);
      // a refusal by the rule answers 409 with the figures, and stays in the model's history
      await evaluateModel(env, { month: '2024-03', id: cand.id });
      const ruled = await call('model-admin', 'POST', `/api/models/${cand.id}/promote`);
      expect(ruled.statusCode).toBe(409);
      expect(ruled.json().message).toMatch(/refused:\n {2}held-out month does not improve/);
      expect((await modelEvents(run.db, cand.id)).map((e) => e.action)).toEqual(['registered', 'evaluated', 'refused']);
      // a better candidate is promoted over the API, and rolled back
      await runOnly(cand.id);
      await evaluateModel(env, { month: '2024-03', id: first.id });
      const promoted = await call('model-admin', 'POST', `/api/models/${first.id}/promote`);
      expect(promoted.statusCode, promoted.body).toBe(200);
      expect(promoted.json()).toMatchObject({ running: { id: Number(first.id) }, replaced: { id: Number(cand.id) } });
      const back = await call('model-admin', 'POST', '/api/models/rollback', { reason: 'test' });
      expect(back.statusCode, back.body).toBe(200);
      expect(back.json()).toMatchObject({ running: { id: Number(cand.id) }, set_aside: { id: Number(first.id) } });
    } finally {
      await app.close();
    }
  }, 300_000);

  it('weighs the held-out month and every shared set in the promotion rule', () => {
    const figures = (score: number, f1: number[]): ModelFigures => ({
      id: 1,
      model: 'm',
      heldOut: { confirmed: 10, dismissed: 5, found: 8, falseFlagged: 1, foundShare: 0.8, falseShare: 0.111, score },
      validation: f1.map((v, i) => ({ set: `set${i}`, pixelF1: v, objectRecall: null, objectF1: null })),
    });
    expect(promotionVerdict(figures(0.8, [0.8, 0.7]), figures(0.85, [0.791, 0.75])).promote).toBe(true);
    expect(promotionVerdict(figures(0.8, [0.8, 0.7]), figures(0.85, [0.789, 0.75])).promote).toBe(false);
    expect(promotionVerdict(figures(0.8, [0.8]), figures(0.8, [0.9])).promote).toBe(false);
    expect(promotionVerdict(figures(0.8, [0.8]), figures(0.85, [0.789])).reasons[1]).toMatch(
      /set0: pixel F1 0\.789 against 0\.800 \(−0\.011\): falls by more than 0\.01/,
    );
  });
});

describe('training chips near the edge of the imagery', () => {
  const tile = (minX: number, minY: number, size: number) =>
    ({ bounds: [minX, minY, minX + size, minY + size] }) as unknown as ChipRow;

  it('moves a chip inward to lie on both months’ imagery, on the tile’s pixel grid, holding the whole patch', () => {
    // a 128 m scene at 0.5 m; a 256 px chip fits only exactly; the patch near its south-west corner
    const t = [tile(1000.25, 2000.25, 128)];
    expect(chipBounds(1010, 2010, 256, 0.5, [1005, 2005, 1015, 2015], t, t)).toEqual([
      1000.25, 2000.25, 1128.25, 2128.25,
    ]);
    // centred when centred fits
    const big = [tile(0, 0, 1000)];
    expect(chipBounds(500, 500, 256, 0.5, [495, 495, 505, 505], big, big)).toEqual([436, 436, 564, 564]);
  });

  it('keeps the centred chip when moving it would cut the patch, or the tiles cannot hold it', () => {
    const t = [tile(0, 0, 128)];
    // a patch reaching past the scene's edge: no chip on the scene holds it all
    expect(chipBounds(5, 64, 256, 0.5, [-20, 60, 10, 68], t, t)).toEqual([-59, 0, 69, 128]);
    // a scene smaller than the chip
    const small = [tile(0, 0, 100)];
    expect(chipBounds(50, 50, 256, 0.5, [45, 45, 55, 55], small, small)).toEqual([-14, -14, 114, 114]);
  });
});
