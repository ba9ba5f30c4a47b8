import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { evaluateModel, evaluationText, promoteModel } from '../training/evaluate.ts';
import type { ModelEnv } from '../training/models.ts';
import { runningModel } from '../store/models.ts';
import { monthOfReportedMisses } from './helpers/reported.ts';
import { freshRun, type Run } from './helpers/run.ts';
import { cleanup } from './helpers/services.ts';

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
    const { fixtures } = await monthOfReportedMisses(run, env, fixturesDir, work);
    // before the towns' verdicts on their reports, the month had nothing to judge a model on
    await run.db('patch').update({ status: 'dispatched', verification_result: null });
    await expect(evaluateModel(env, { month: '2024-03', id: fixtures.id })).rejects.toThrow(
      /2024-03 has no verified patches/,
    );
    await run.db('patch').update({ status: 'legal', verification_result: 'legal' });
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
