import { describe, expect, it } from 'vitest';
import { EPSG_4548, crs } from '../core/crs.ts';
import { detectTile, releaseProbability } from '../pipeline/detect.tile.ts';
import { OnnxChangeModel } from '../pipeline/io/model.onnx.ts';
import { integerShift, pixelMap, readBaselineOnGrid } from '../pipeline/pair.align.ts';
import { MemorySource, type RasterInfo } from '../pipeline/raster.source.ts';
import { echoManifest, echoModel } from './helpers/echo.ts';
import { bothValid, fillWindow } from '../pipeline/model.input.ts';

function raster(
  file: string,
  w: number,
  h: number,
  gt: RasterInfo['geoTransform'],
  fill: (x: number, y: number, b: number) => number,
  nodata: number | null = null,
): MemorySource {
  const bands = [0, 1, 2].map((b) => Uint8Array.from({ length: w * h }, (_, i) => fill(i % w, Math.floor(i / w), b)));
  return new MemorySource(
    { file, widthPx: w, heightPx: h, bandCount: 3, sampleType: 'uint8', nodata, crs: EPSG_4548, geoTransform: gt },
    bands,
  );
}

const GT: RasterInfo['geoTransform'] = [611200, 0.5, 0, 2713600, 0, -0.5];

describe('detectTile', () => {
  it('stitches overlapping windows without seams', async () => {
    const after = raster('after', 100, 70, GT, (x, y) => (x * 7 + y * 3) % 256);
    const before = raster('before', 100, 70, GT, () => 0);
    const r = await detectTile({ after, baselines: [{ source: before }], model: echoModel(32, 8), batchSize: 3 });
    expect(r.windows).toBe(12);
    for (let y = 0; y < 70; y++)
      for (let x = 0; x < 100; x++) expect(r.probability[y * 100 + x]).toBeCloseTo(((x * 7 + y * 3) % 256) / 255, 5);
  });

  // A model that halves its input four times (manifest maxWindowPx) is fed whole 16 px cells: one window
  // that covers an axis of another length is padded, its last column and row repeated, and the padding's
  // answers are dropped.
  it('feeds a model with maxWindowPx windows padded to a multiple of 16, and keeps only the window', async () => {
    const fill = (x: number, y: number, b: number) => (x * 7 + y * 3 + b * 50) % 256;
    // 100 × 70: one window, padded both ways; 300 × 70: three windows of 112 across, padded down, in one call
    for (const [W, windows] of [
      [100, 1],
      [300, 3],
    ])
      for (const inputType of ['float32', 'uint8'] as const) {
        const after = raster('after', W, 70, GT, fill);
        const before = raster('before', W, 70, GT, () => 0);
        const seen: { batch: number; h: number; w: number; input: Float32Array | Uint8Array }[] = [];
        const manifest = { ...echoManifest(64, 16), maxWindowPx: 128, inputType };
        const model = {
          manifest,
          async run(_b: Float32Array | Uint8Array, a: Float32Array | Uint8Array, batch: number, h: number, w: number) {
            seen.push({ batch, h, w, input: a.slice() });
            // each window's first band: interleaved for an 8-bit model, the window's first plane for a float one
            const plane = h * w;
            const first = (k: number, p: number) =>
              inputType === 'uint8' ? a[(k * plane + p) * 3] / 255 : a[k * 3 * plane + p];
            const out = new Float32Array(batch * plane);
            for (let k = 0; k < batch; k++) for (let p = 0; p < plane; p++) out[k * plane + p] = first(k, p);
            return { probability: out };
          },
          async close() {},
        };
        const r = await detectTile({ after, baselines: [{ source: before }], model });
        const inW = 112; // one window of 100 padded to 112; windows of 112 as they are
        expect(r.windows).toBe(windows);
        expect(seen.map(({ batch, h, w }) => [batch, h, w])).toEqual([[windows, 80, inW]]);
        for (let y = 0; y < 70; y++)
          for (let x = 0; x < W; x++) {
            const want = fill(x, y, 0) / 255;
            if (Math.abs(r.probability[y * W + x] - want) > 1e-6)
              expect(r.probability[y * W + x], `${W} ${inputType} x ${x} y ${y}`).toBeCloseTo(want, 6);
          }
        // the padding repeats each window's last column (100 px: at 99), then its last row, in every band
        const { input } = seen[0];
        const at = (k: number, x: number, y: number, b: number) =>
          inputType === 'uint8' ? input[((k * 80 + y) * inW + x) * 3 + b] : input[(k * 3 + b) * 80 * inW + y * inW + x];
        const lastX = W === 100 ? 99 : inW - 1;
        for (let k = 0; k < windows; k++)
          for (const b of [0, 1, 2])
            for (const [x, y, fromX, fromY] of [
              [inW - 1, 69, lastX, 69],
              [40, 70, 40, 69],
              [inW - 1, 79, lastX, 69],
            ])
              expect(at(k, x, y, b), `${W} ${inputType} window ${k} band ${b} at ${x},${y}`).toBe(
                at(k, fromX, fromY, b),
              );
      }
  });

  it('gives zero probability where either date has no data', async () => {
    const after = raster('after', 20, 20, GT, (x) => (x < 5 ? 0 : 200), 0);
    const before = raster('before', 20, 20, GT, () => 100);
    const r = await detectTile({ after, baselines: [{ source: before }], model: echoModel(16, 4) });
    expect(r.valid[0]).toBe(0);
    expect(r.probability[0]).toBe(0);
    expect(r.valid[10]).toBe(1);
  });

  it('runs no window that lacks data on either date, and gives the same pixels elsewhere', async () => {
    // windows of 32 overlapping by 8 on 100 × 70: 4 × 3; the after image has no data right of x = 60
    // and the before image none above y = 32, so windows wholly in either hole are not run
    const fill = (x: number, y: number) => ((x * 7 + y * 3) % 250) + 1;
    const after = raster('after', 100, 70, GT, (x, y) => (x >= 60 ? 0 : fill(x, y)), 0);
    const before = raster('before', 100, 70, GT, (_x, y) => (y < 32 ? 0 : 100), 0);
    const calls: number[] = [];
    const model = echoModel(32, 8);
    const counting = { ...model, run: (...a: Parameters<typeof model.run>) => (calls.push(a[2]), model.run(...a)) };
    const r = await detectTile({ after, baselines: [{ source: before }], model: counting, batchSize: 1 });
    // the grid's starts are x 0, 24, 48, 68 and y 0, 24, 38: column 68 lies wholly right of x = 60 and
    // row 0 wholly above y = 32, which leaves 3 × 2 of the 12 windows
    expect(r.windows).toBe(6);
    expect(calls.length).toBe(6);
    expect(r.validPx).toBe(60 * 38);
    for (let y = 0; y < 70; y++)
      for (let x = 0; x < 100; x++) {
        const i = y * 100 + x;
        expect(r.valid[i]).toBe(x < 60 && y >= 32 ? 1 : 0);
        expect(r.probability[i]).toBeCloseTo(r.valid[i] ? fill(x, y) / 255 : 0, 5);
      }
  });

  it('reuses a handed-back result for the next tile with nothing of the old one left in it', async () => {
    // 512² px: big enough for the pool; nodata on the left of the first tile, none in the second
    const first = raster('first', 512, 512, GT, (x, y) => (x < 40 ? 0 : ((x + 2 * y) % 250) + 1), 0);
    const second = raster('second', 512, 512, GT, (x, y) => ((x * y) % 251) + 1);
    const before = raster('before', 512, 512, GT, () => 100);
    const model = echoModel(512, 0);
    const r1 = await detectTile({ after: first, baselines: [{ source: before }], model });
    const expected = { probability: r1.probability.slice(), valid: r1.valid.slice() };
    releaseProbability(r1);
    const r2 = await detectTile({ after: second, baselines: [{ source: before }], model });
    expect(r2.probability).toBe(r1.probability); // the pool handed the same planes out again
    expect(r2.valid.every((v) => v === 1)).toBe(true);
    releaseProbability(r2);
    const r3 = await detectTile({ after: first, baselines: [{ source: before }], model });
    expect(r3.validPx).toBe(472 * 512);
    expect(r3.probability).toEqual(expected.probability);
    expect(r3.valid).toEqual(expected.valid);
  });

  it('refuses a baseline in another CRS with both files named', async () => {
    const after = raster('cur.tif', 8, 8, GT, () => 1);
    const other = new MemorySource(
      { ...raster('base.tif', 8, 8, GT, () => 1).info, crs: crs(32650, false) },
      [0, 1, 2].map(() => new Uint8Array(64)),
    );
    await expect(detectTile({ after, baselines: [{ source: other }], model: echoModel(8, 0) })).rejects.toThrow(
      /base\.tif is in EPSG:32650 but cur\.tif is in EPSG:4548/,
    );
  });
});

describe('baseline on the current grid', () => {
  it('copies a whole-pixel shift exactly and marks uncovered pixels invalid', async () => {
    // Baseline origin 2 px east and 1 px south of the current tile.
    const base = raster('base', 10, 10, [611201, 0.5, 0, 2713599.5, 0, -0.5], (x, y) => x * 10 + y);
    const cur = raster('cur', 10, 10, GT, () => 0).info;
    expect(integerShift(pixelMap(cur.geoTransform, base.info.geoTransform))).toEqual({ dx: -2, dy: -1 });
    const r = await readBaselineOnGrid(cur, { x: 0, y: 0, width: 10, height: 10 }, [{ source: base }], [0]);
    expect(r.valid[0]).toBe(0);
    expect(r.valid[1 * 10 + 2]).toBe(1);
    expect(r.bands[0][1 * 10 + 2]).toBeCloseTo(0, 6);
    expect(r.bands[0][3 * 10 + 5]).toBeCloseTo((3 * 10 + 2) / 255, 6);
  });

  it('resamples a half-pixel offset bilinearly', async () => {
    const base = raster('base', 10, 10, [611199.75, 0.5, 0, 2713600, 0, -0.5], (x) => x * 20);
    const cur = raster('cur', 8, 8, GT, () => 0).info;
    const r = await readBaselineOnGrid(cur, { x: 0, y: 0, width: 8, height: 8 }, [{ source: base }], [0]);
    // Current pixel 2's centre lies halfway between baseline pixels 2 and 3.
    expect(r.bands[0][2] * 255).toBeCloseTo(50, 3);
  });
});

describe('cva-baseline ONNX model', () => {
  it('finds a new roof but not a global brightness shift or a 1-pixel misregistration', async () => {
    const model = await OnnxChangeModel.load('models/cva-baseline');
    expect(model.manifest.name).toBe('cva-baseline');
    const W = 128;
    const texture = (x: number, y: number, b: number) =>
      110 + ((x * 13 + y * 7 + b * 5) % 23) + (Math.floor(x / 16) % 2) * 30;
    const before = raster('before', W, W, GT, texture);
    const shifted = raster('after', W, W, GT, (x, y, b) => Math.min(255, Math.round(texture(x + 1, y, b) * 1.06 + 6)));
    const clean = await detectTile({ after: shifted, baselines: [{ source: before }], model });
    const falseAlarms = clean.probability.filter((p) => p >= 0.5).length;
    expect(falseAlarms).toBeLessThan(W * W * 0.01);
    const roof = raster('after', W, W, GT, (x, y, b) =>
      x >= 40 && x < 80 && y >= 50 && y < 90 ? [200, 90, 70][b] : texture(x, y, b),
    );
    const r = await detectTile({ after: roof, baselines: [{ source: before }], model });
    let hit = 0;
    for (let y = 50; y < 90; y++) for (let x = 40; x < 80; x++) hit += r.probability[y * W + x] >= 0.5 ? 1 : 0;
    expect(hit / 1600).toBeGreaterThan(0.9);
    await model.close();
  });
});

describe('8-bit model input from pixel-interleaved samples', () => {
  it('copies windows as stored and zeroes exactly the pixels without data on either date', () => {
    const W = 61,
      H = 17;
    const manifest = { ...echoManifest(16, 0), inputType: 'uint8' as const };
    const data = (seed: number) => Uint8Array.from({ length: W * H * 3 }, (_, i) => (i * seed) % 251);
    // no data: a collar on the left, a run in the middle of some rows, scattered single pixels
    const mask = (shift: number) =>
      Uint8Array.from({ length: W * H }, (_, i) => {
        const x = i % W,
          y = Math.floor(i / W);
        return x < 5 + shift || (y % 3 === 0 && x >= 20 && x < 27 + shift) || i % 13 === shift ? 0 : 1;
      });
    const planes = (seed: number, shift: number) => ({
      width: W,
      height: H,
      bands: [],
      interleaved: { data: data(seed), samples: 3, bandIdx: [0, 1, 2] },
      luts: null,
      bytes: true,
      valid: mask(shift),
    });
    const a = planes(7, 0),
      b = planes(11, 2);
    const both = bothValid(a, b)!;
    for (let i = 0; i < W * H; i++) expect(both[i]).toBe(a.valid[i] & b.valid[i]);
    const win = { x: 3, y: 2, width: 50, height: 13 };
    const out = new Uint8Array(2 * win.width * win.height * 3).fill(99);
    const withBoth = { ...a, valid: both };
    fillWindow(withBoth, win, manifest, out, 1);
    const at = win.width * win.height * 3;
    for (let r = 0; r < win.height; r++)
      for (let c = 0; c < win.width; c++) {
        const s = (win.y + r) * W + win.x + c;
        for (let k = 0; k < 3; k++) {
          const got = out[at + (r * win.width + c) * 3 + k];
          const want = both[s] ? a.interleaved.data[s * 3 + k] : 0;
          if (got !== want) expect(got, `row ${r} col ${c} sample ${k}`).toBe(want);
        }
      }
    expect(out.subarray(0, at).every((v) => v === 99)).toBe(true); // window 0 of the batch untouched
  });
});
