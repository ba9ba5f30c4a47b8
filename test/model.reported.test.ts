import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { evaluateModel, evaluationText, promoteModel } from '../training/evaluate.ts';
import { ensureRunning, registerModel, type ModelEnv } from '../training/models.ts';
import { runningModel } from '../store/models.ts';
import { reportPatch } from '../store/report.ts';
import { runBatch } from './helpers/batch.ts';
import { freshRun, type Run } from './helpers/run.ts';
import { cleanup } from './helpers/services.ts';
import { testWorkflowEnv } from './helpers/api.ts';

/**
 * The promotion rule sees recall (issue 32): buildings a model missed reach the held-out month as patches
 * the towns reported (巡查发现) and confirmed. On the fixtures a model that sees nothing runs; its batch made
 * no patch, so the month's only verdicts are the towns' two reports of the buildings inside the permit.
 * The fixtures' own model finds both and is promoted; without the reports there was nothing to judge it on.
 */
describe('reported misses in the held-out month', () => {
  const fixturesDir = inject('fixturesDir');
  let run: Run;
  let env: ModelEnv;
  let work: string;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'tuban-reported-'));
    run = await freshRun(fixturesDir);
    env = { db: run.db, config: { ...run.config, TUBAN_MODEL_VALIDATION: '' }, actor: 'test' };
  }, 300_000);
  afterAll(async () => {
    rmSync(work, { recursive: true, force: true });
    await cleanup(run.db, run.config);
  });

  it('counts them as confirmed patches the running model did not find, and promotes the model that finds them', async () => {
    const fixtures = await ensureRunning(env); // the fixtures' model, registered from the config
    // a copy that sees nothing runs the March batch: no patch
    const dir = join(work, 'blind');
    cpSync('models/cva-baseline', dir, { recursive: true });
    const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    writeFileSync(
      join(dir, 'manifest.json'),
      JSON.stringify({ ...m, version: 'blind', normalisation: { mean: [0, 0, 0], std: [1e6, 1e6, 1e6] } }),
    );
    const blind = await registerModel(env, dir);
    await run.db('detector_model').where({ id: fixtures.id }).update({ status: 'candidate' });
    await run.db('detector_model').where({ id: blind.id }).update({ status: 'running' });
    await runBatch(run.db, run.config, '2024-03', '2024-02');
    expect(await run.db('batch').first('model_version')).toEqual({ model_version: 'blind' });
    expect(await run.db('patch').count({ n: '*' })).toEqual([{ n: '0' }]);
    await expect(evaluateModel(env, { month: '2024-03', id: fixtures.id })).rejects.toThrow(
      /2024-03 has no verified patches/,
    );

    // the town finds the two buildings on patrol and confirms them legal (the permit covers them)
    const truth = JSON.parse(readFileSync(join(fixturesDir, 'truth.geojson'), 'utf8')) as {
      features: { properties: { id: string }; geometry: unknown }[];
    };
    const town = {
      id: 1,
      username: 'dianqian',
      displayName: '殿前街道办',
      role: 'town' as const,
      townCode: '350206001',
    };
    const workflow = testWorkflowEnv(() => '2024-03-18');
    for (const id of ['permitted-1', 'permitted-2']) {
      const g = truth.features.find((f) => f.properties.id === id)!.geometry;
      const outline = (
        await run.db.raw(
          `select ST_AsGeoJSON(ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON(?), 4548), 4326), 8)::json as g`,
          [JSON.stringify(g)],
        )
      ).rows[0].g;
      const made = await reportPatch(run.db, workflow, { touchM: 1, onBuildingShare: 0.5 }, town, {
        outline,
        month: '2024-03',
        source: 'patrol',
        visible: true,
        request_key: `patrol-${id}`,
      });
      await run
        .db('patch')
        .where({ code: made.code })
        .update({ status: 'legal', verification_result: 'legal', permit_ref: '厦湖建许2024-0012' });
    }

    const ev = await evaluateModel(env, { month: '2024-03', id: fixtures.id });
    expect(ev.running.heldOut).toMatchObject({ confirmed: 2, reported: 2, found: 0, reportedFound: 0, score: 0 });
    expect(ev.candidate.heldOut).toMatchObject({
      confirmed: 2,
      reported: 2,
      found: 2,
      reportedFound: 2,
      falseFlagged: 0,
      score: 1,
    });
    expect(ev.verdict.promote).toBe(true);
    expect(ev.verdict.reasons[0]).toMatch(/of them reported misses 2\/2/);
    expect(evaluationText(ev)).toMatch(/2 of them reported by towns or the public/);
    await promoteModel(env, fixtures.id);
    expect((await runningModel(run.db))?.id).toBe(fixtures.id);
  }, 600_000);
});
