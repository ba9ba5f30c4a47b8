import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { ensureRunning, registerModel, type ModelEnv } from '../../training/models.ts';
import type { ModelRow } from '../../store/models.ts';
import { reportPatch } from '../../store/report.ts';
import { runBatch } from './batch.ts';
import type { Run } from './run.ts';
import { testWorkflowEnv } from './api.ts';

/**
 * A month whose only verdicts are misses the towns reported: a copy of the fixtures' model that sees nothing
 * runs the March batch (no patch); the town reports the two buildings inside the permit on patrol and they
 * are confirmed legal. The fixtures' own model is left a candidate. For the tests of the promotion rule's
 * recall (model.reported, web.models).
 */
export async function monthOfReportedMisses(
  run: Run,
  env: ModelEnv,
  fixturesDir: string,
  work: string,
): Promise<{ fixtures: ModelRow; blind: ModelRow }> {
  const fixtures = await ensureRunning(env); // the fixtures' model, registered from the config
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

  const truth = JSON.parse(readFileSync(join(fixturesDir, 'truth.geojson'), 'utf8')) as {
    features: { properties: { id: string }; geometry: unknown }[];
  };
  const town = { id: 1, username: 'dianqian', displayName: '殿前街道办', role: 'town' as const, townCode: '350206001' };
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
  return { fixtures, blind };
}
