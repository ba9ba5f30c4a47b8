import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { makeFixtures } from '../scripts/make-fixtures.ts';

/**
 * Generates the fixtures once per content of the generator (they are deterministic), in the
 * system temp folder, and hands their folder to the tests.
 */
export default function setup(project: TestProject): void {
  const hash = createHash('sha256')
    .update(readFileSync(new URL('../scripts/make-fixtures.ts', import.meta.url)))
    .update(readFileSync(new URL('../scripts/fixtures/scene.ts', import.meta.url)))
    .update(readFileSync(new URL('../scripts/fixtures/layers.ts', import.meta.url)))
    .update(readFileSync(new URL('../pipeline/io/geotiff.write.ts', import.meta.url)))
    .update(readFileSync(new URL('../scripts/prng.ts', import.meta.url)))
    .digest('hex')
    .slice(0, 12);
  const dir = join(tmpdir(), `tuban-fixtures-${hash}`);
  if (!existsSync(join(dir, 'truth.geojson'))) {
    const tmp = `${dir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    makeFixtures(tmp);
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
  }
  project.provide('fixturesDir', dir);
}

declare module 'vitest' {
  export interface ProvidedContext {
    fixturesDir: string;
  }
}
