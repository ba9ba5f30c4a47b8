import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Config } from '../config/env.ts';
import { makeHostile, type HostileCase } from '../scripts/make-hostile.ts';
import type { Db } from '../store/db.ts';
import { registerImagery } from '../imagery/register.ts';
import { importLayer } from '../store/layers.ts';
import { runBatch } from './helpers/batch.ts';
import { cleanup, isolatedConfig, migratedDb } from './helpers/services.ts';

/**
 * Every file of the hostile corpus (scripts/make-hostile.ts) must end in its named error, leave
 * the database consistent, and never stop the good tile delivered beside it.
 */
describe('hostile input corpus', () => {
  const fixturesDir = inject('fixturesDir');
  let config: Config;
  let db: Db;
  let cases: HostileCase[];
  let dir: string;

  beforeAll(async () => {
    config = isolatedConfig();
    db = await migratedDb(config);
    dir = join(config.dataDir, 'hostile');
    cases = makeHostile(dir);
    copyFileSync(join(fixturesDir, 'imagery', '2024-03', 'r0c0.tif'), join(dir, 'good.tif'));
    const base = await registerImagery(db, config, '2024-03', [join(fixturesDir, 'imagery', '2024-03')]);
    expect(base.refused).toEqual([]);
  });
  afterAll(async () => cleanup(db, config));

  it('stops each bad tile at registration or in the batch with its named error; the good tile completes', async () => {
    const reg = await registerImagery(db, config, '2024-04', [dir]);
    const refused = Object.fromEntries(reg.refused.map((r) => [r.path.split('/').pop()!, r]));
    for (const c of cases.filter((c) => c.stage === 'register')) {
      expect(refused[c.file]?.code, `${c.file} (${c.what})`).toBe(c.code);
      expect(refused[c.file].reason).toContain(join(dir, c.file));
    }
    const batchCases = cases.filter((c) => c.stage === 'batch');
    expect(reg.registered.map((r) => r.path.split('/').pop() ?? '').sort()).toEqual(
      ['good.tif', ...batchCases.map((c) => c.file)].sort(),
    );

    const s = await runBatch(db, config, '2024-04', '2024-03');
    expect(s.status).toBe('completed_with_failures');
    expect(s.tiles).toEqual({ total: 1 + batchCases.length, ok: 1, failed: batchCases.length });
    const failed = Object.fromEntries(s.failedTiles.map((t) => [t.path.split('/').pop()!, t]));
    for (const c of batchCases) {
      expect(failed[c.file]?.code, `${c.file} (${c.what})`).toBe(c.code);
      expect(failed[c.file].reason).toContain(c.file);
    }
    expect(s.patches.new).toBe(0); // the good tile is the baseline's own pixels
    // files refused at registration are listed in the same summary, each with its named error
    const refusedInSummary = Object.fromEntries((s.refusedFiles ?? []).map((r) => [r.path.split('/').pop()!, r.code]));
    for (const c of cases.filter((c) => c.stage === 'register'))
      expect(refusedInSummary[c.file], `${c.file} in the batch summary`).toBe(c.code);

    // Consistent: only registered files have imagery rows, failed tiles left no change polygons.
    const [{ n: images }] = await db('imagery').where({ month: '2024-04' }).count({ n: '*' });
    expect(Number(images)).toBe(1 + batchCases.length);
    const { rows } = await db.raw(
      `select count(*)::int n from change_polygon c join batch_tile t using (batch_id, imagery_id) where t.status = 'failed'`,
    );
    expect(rows[0].n).toBe(0);
  });

  it('imports the good part of a mixed layer and reports every bad feature; refuses a GBK file whole', async () => {
    const mixed = await importLayer(db, join(dir, 'layer-mixed.geojson'), 'farmland');
    expect(mixed.imported).toBe(2);
    expect(mixed.repaired.map((r) => r.code)).toEqual(['BOWTIE']);
    expect(mixed.rejected.map((r) => r.code ?? '').sort()).toEqual(['EMPTY', 'LONLAT']);
    expect(mixed.rejected.find((r) => r.code === 'LONLAT')!.reason).toMatch(
      /look like degrees, but EPSG:4548 is projected/,
    );
    await expect(importLayer(db, join(dir, 'layer-gbk.geojson'), 'town')).rejects.toMatchObject({
      code: 'not_utf8',
      message: expect.stringContaining('layer-gbk.geojson: not UTF-8'),
    });
    const [{ n }] = await db('reference_feature').where({ kind: 'town' }).count({ n: '*' });
    expect(Number(n)).toBe(0);
  });
});
