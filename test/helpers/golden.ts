import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { expect } from 'vitest';

/** test/golden/: inputs in in/, the outputs they must give in out/ (as turf keeps test/in and test/out). */
export const GOLDEN = join(dirname(fileURLToPath(import.meta.url)), '..', 'golden');

/**
 * `UPDATE_GOLDEN=1 npx vitest run test/golden.test.ts` writes the outputs afresh (review the diff
 * before committing); otherwise a missing output is an error, never written silently.
 */
const updating = process.env.UPDATE_GOLDEN === '1';

function goldenPath(name: string): string {
  const path = join(GOLDEN, 'out', name);
  if (updating) {
    mkdirSync(dirname(path), { recursive: true });
    return path;
  }
  if (!existsSync(path))
    throw new Error(`${path}: no golden output; run UPDATE_GOLDEN=1 npx vitest run test/golden.test.ts`);
  return path;
}

/** Text output (GeoJSON) equal to out/<name>, line for line. */
export function expectGoldenText(name: string, actual: string): void {
  const path = goldenPath(name);
  if (updating) writeFileSync(path, actual);
  else expect(actual, path).toBe(readFileSync(path, 'utf8'));
}

/**
 * A PNG whose pixels match out/<name>: same size and channels, no channel more than `tolerance`
 * apart (PNG encoders and resampling may differ in the last bit between libvips builds).
 */
export async function expectGoldenPng(name: string, png: Buffer, tolerance = 2): Promise<void> {
  const path = goldenPath(name);
  if (updating) {
    writeFileSync(path, png);
    return;
  }
  const [a, b] = await Promise.all(
    [png, readFileSync(path)].map((p) => sharp(p).raw().toBuffer({ resolveWithObject: true })),
  );
  expect({ width: a.info.width, height: a.info.height, channels: a.info.channels }, path).toEqual({
    width: b.info.width,
    height: b.info.height,
    channels: b.info.channels,
  });
  let worst = 0;
  let differing = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = Math.abs(a.data[i] - b.data[i]);
    if (d > tolerance) differing++;
    if (d > worst) worst = d;
  }
  expect({ differing, worst: differing ? worst : 0 }, `${path}: samples further apart than ${tolerance}`).toEqual({
    differing: 0,
    worst: 0,
  });
}
