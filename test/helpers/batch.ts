import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../../config/env.ts';
import { cmdBatchRun } from '../../cli/commands.ts';
import { createLogger } from '../../core/log.ts';
import type { Db } from '../../store/db.ts';
import { registerImagery } from '../../store/imagery.ts';
import { importLayer } from '../../store/layers.ts';
import type { BatchSummary } from '../../store/batch.ts';

export const KINDS = ['town', 'grid', 'permit', 'building', 'farmland', 'ecological', 'water'] as const;

export async function loadFixtureLayers(db: Db, fixturesDir: string): Promise<void> {
  for (const kind of KINDS) {
    const r = await importLayer(db, join(fixturesDir, 'layers', `${kind}.geojson`), kind);
    if (r.rejected.length)
      throw new Error(`fixture layer ${kind} had rejected features: ${JSON.stringify(r.rejected)}`);
  }
}

export async function registerFixtureMonths(db: Db, config: Config, fixturesDir: string): Promise<void> {
  for (const [month, date] of [
    ['2024-02', '2024-02-10'],
    ['2024-03', '2024-03-15'],
  ]) {
    const r = await registerImagery(db, config, month, [join(fixturesDir, 'imagery', month)], date);
    if (r.refused.length) throw new Error(`fixture imagery refused: ${JSON.stringify(r.refused)}`);
  }
}

/** Copy a month's tiles into a new folder (to stage another month from the same pixels). */
export function copyMonth(fixturesDir: string, month: string, to: string): string[] {
  mkdirSync(to, { recursive: true });
  return readdirSync(join(fixturesDir, 'imagery', month))
    .sort()
    .map((f) => {
      copyFileSync(join(fixturesDir, 'imagery', month, f), join(to, f));
      return join(to, f);
    });
}

export async function runBatch(db: Db, config: Config, month: string, baseline?: string): Promise<BatchSummary> {
  const r = await cmdBatchRun(db, config, createLogger(config.TUBAN_LOG_LEVEL), {
    month,
    baseline,
    wait: true,
    inProcessWorkers: true,
  });
  if (!r.summary) throw new Error('batch ended without summary');
  return r.summary;
}
