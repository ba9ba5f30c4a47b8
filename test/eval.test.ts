import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { datasetNames, evalText, evaluateDataset } from '../training/dataset.eval.ts';

/** `tuban eval` on a small dataset written here: one pair with a new roof, one without change. */
describe('dataset evaluation', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tuban-eval-'));
  const N = 128;
  const ground = (x: number, y: number) => 120 + ((x * 7 + y * 13) % 17);
  const img = (roof: boolean) =>
    Buffer.from(
      Array.from({ length: N * N * 3 }, (_, i) => {
        const p = Math.floor(i / 3),
          x = p % N,
          y = Math.floor(p / N);
        return roof && x >= 40 && x < 80 && y >= 40 && y < 80 ? [210, 90, 60][i % 3] : ground(x, y);
      }),
    );
  const png = (data: Buffer, channels: 1 | 3) =>
    sharp(data, { raw: { width: N, height: N, channels } })
      .png()
      .toBuffer();

  beforeAll(async () => {
    for (const s of ['A', 'B', 'label']) mkdirSync(join(dir, s), { recursive: true });
    writeFileSync(join(dir, 'A', 'roof.png'), await png(img(false), 3));
    writeFileSync(join(dir, 'B', 'roof.png'), await png(img(true), 3));
    // A JPEG label with compression noise: values below 128 are "no change".
    const lab = Buffer.from(
      Array.from({ length: N * N }, (_, p) => {
        const x = p % N,
          y = Math.floor(p / N);
        return x >= 40 && x < 80 && y >= 40 && y < 80 ? 250 : (p % 5) * 10;
      }),
    );
    writeFileSync(
      join(dir, 'label', 'roof.jpg'),
      await sharp(lab, { raw: { width: N, height: N, channels: 1 } })
        .jpeg({ quality: 95 })
        .toBuffer(),
    );
    writeFileSync(join(dir, 'A', 'same.png'), await png(img(false), 3));
    writeFileSync(join(dir, 'B', 'same.png'), await png(img(false), 3));
    writeFileSync(join(dir, 'label', 'same.png'), await png(Buffer.alloc(N * N), 1));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('lists pairs from A/ and finds labels with another extension', () => {
    expect(datasetNames(dir)).toEqual(['roof.png', 'same.png']);
  });

  it('reports per-image rows and totals for the CVA baseline', async () => {
    const r = await evaluateDataset(dir, 'models/cva-baseline');
    expect(r.images.map((i) => i.name)).toEqual(['roof.png', 'same.png']);
    const roof = r.images[0];
    expect(roof.pixel.recall!).toBeGreaterThan(0.9);
    expect(roof.pixel.precision!).toBeGreaterThan(0.6);
    expect(roof.object).toMatchObject({ truth: 1, found: 1 });
    const same = r.images[1];
    expect(same.pixel.tp + same.pixel.fp).toBe(0);
    expect(same.object.truth).toBe(0);
    expect(r.total.pixel.tp).toBe(roof.pixel.tp);
    expect(r.total.object.recallLarge).toBe(1); // 40 × 40 px at 0.5 m = 400 m² ≥ 50 m²
  });

  it('sweeps thresholds in one pass, the chosen one matching the totals', async () => {
    const r = await evaluateDataset(dir, 'models/cva-baseline', { threshold: 0.5, sweep: [0.3, 0.5, 0.9] });
    expect(r.sweep.map((s) => s.threshold)).toEqual([0.3, 0.5, 0.9]);
    expect(r.sweep[1].pixel).toEqual(r.total.pixel);
    expect(r.sweep[1].object).toEqual(r.total.object);
    // a higher threshold never marks more pixels
    expect(r.sweep[2].pixel.tp + r.sweep[2].pixel.fp).toBeLessThanOrEqual(r.sweep[0].pixel.tp + r.sweep[0].pixel.fp);
    expect(evalText(r)).toMatch(/threshold sweep/);
  });

  it('evaluates only the validation images a split file names for the folder, and refuses a split that does not fit', async () => {
    const split = join(dir, '..', `split-${process.pid}.json`);
    const folder = dir.split('/').pop()!;
    try {
      writeFileSync(split, JSON.stringify({ validation: { [folder]: ['same.png'] } }));
      const r = await evaluateDataset(dir, 'models/cva-baseline', { split });
      expect(r.images.map((i) => i.name)).toEqual(['same.png']);
      writeFileSync(split, JSON.stringify({ validation: { [folder]: ['gone.png'] } }));
      await expect(evaluateDataset(dir, 'models/cva-baseline', { split })).rejects.toThrow(/gone\.png not in/);
      writeFileSync(split, JSON.stringify({ validation: { other: ['same.png'] } }));
      await expect(evaluateDataset(dir, 'models/cva-baseline', { split })).rejects.toThrow(
        new RegExp(`no list of validation images for folder "${folder}" \\(folders: other\\)`),
      );
    } finally {
      rmSync(split, { force: true });
    }
  });

  it('refuses a folder that is not a dataset, naming what is missing', async () => {
    await expect(evaluateDataset(join(dir, 'A'), 'models/cva-baseline')).rejects.toThrow(/no A\/ folder/);
  });
});
