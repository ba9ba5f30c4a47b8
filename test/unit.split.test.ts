import { describe, expect, it } from 'vitest';
import { removeSmallRegions, splitTouching } from '../pipeline/mask.split.ts';
import { objectCounts } from '../pipeline/metrics.ts';
import { vectorizeRaster } from '../pipeline/vectorize.ts';

/** A w × h canvas with rectangles [x0, y0, x1, y1) set to 1 in the mask and `interior` set inside them, shrunk by `inset`. */
function canvas(w: number, h: number, rects: number[][], inset = 3) {
  const mask = new Uint8Array(w * h);
  const interior = new Float32Array(w * h);
  for (const [x0, y0, x1, y1] of rects) {
    for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) mask[y * w + x] = 1;
    for (let y = y0 + inset; y < y1 - inset; y++)
      for (let x = x0 + inset; x < x1 - inset; x++) interior[y * w + x] = 0.9;
  }
  return { mask, interior };
}

const regions = (mask: Uint8Array, w: number, h: number) => objectCounts(mask, mask, w, h).truth;

describe('splitting touching buildings at interior seeds', () => {
  it('splits two roofs that share a wall into two 8-separated regions, losing only the wall line', () => {
    const w = 60,
      h = 40;
    const { mask, interior } = canvas(w, h, [
      [5, 5, 25, 30],
      [25, 8, 50, 28],
    ]);
    const before = mask.reduce((s, v) => s + v, 0);
    expect(regions(mask, w, h)).toBe(1);
    const cleared = splitTouching(mask, interior, w, h);
    expect(regions(mask, w, h)).toBe(2);
    expect(cleared).toBeGreaterThan(0);
    expect(cleared).toBeLessThanOrEqual(25); // one pixel line along the shared wall
    expect(mask.reduce((s, v) => s + v, 0)).toBe(before - cleared);
  });

  it('splits a row of five terraced houses, and a diagonal contact', () => {
    const w = 120,
      h = 30;
    const { mask, interior } = canvas(
      w,
      h,
      [0, 1, 2, 3, 4].map((k) => [5 + k * 20, 5, 25 + k * 20, 25]),
    );
    splitTouching(mask, interior, w, h);
    expect(regions(mask, w, h)).toBe(5);
    const d = canvas(40, 40, [
      [2, 2, 20, 20],
      [20, 20, 38, 38],
    ]); // touching only at a corner: one 8-connected region
    expect(regions(d.mask, 40, 40)).toBe(1);
    splitTouching(d.mask, d.interior, 40, 40);
    expect(regions(d.mask, 40, 40)).toBe(2);
  });

  it('leaves a region alone when it has one seed or none, and ignores seeds smaller than minSeedPx', () => {
    const w = 50,
      h = 30;
    const one = canvas(w, h, [[5, 5, 40, 25]]);
    const copy = one.mask.slice();
    expect(splitTouching(one.mask, one.interior, w, h)).toBe(0);
    expect(one.mask).toEqual(copy);
    const none = canvas(w, h, [[5, 5, 40, 25]], 20);
    expect(splitTouching(none.mask, none.interior, w, h)).toBe(0);
    // a roof with a 2-pixel speck of interior next to a real seed: the speck does not split it
    const speck = canvas(w, h, [[5, 5, 40, 25]]);
    speck.interior.fill(0);
    for (let y = 10; y < 20; y++) for (let x = 10; x < 20; x++) speck.interior[y * w + x] = 0.9;
    speck.interior[15 * w + 35] = speck.interior[15 * w + 36] = 0.9;
    expect(splitTouching(speck.mask, speck.interior, w, h)).toBe(0);
  });

  it('raises object recall where the label has separate buildings the mask merged', () => {
    const w = 80,
      h = 40;
    const truth = canvas(w, h, [
      [5, 5, 24, 30],
      [26, 5, 45, 30],
      [47, 5, 70, 30],
    ]).mask;
    const { mask, interior } = canvas(w, h, [[5, 5, 70, 30]], 0); // one blob over all three
    interior.fill(0);
    for (const [x0, x1] of [
      [9, 20],
      [30, 41],
      [51, 66],
    ])
      for (let y = 9; y < 26; y++) for (let x = x0; x < x1; x++) interior[y * w + x] = 0.8;
    expect(objectCounts(mask, truth, w, h).found).toBe(0);
    splitTouching(mask, interior, w, h);
    expect(objectCounts(mask, truth, w, h)).toMatchObject({ truth: 3, found: 3, predicted: 3, matched: 3 });
  });

  it('gives one polygon per building through vectorizeRaster, from probabilities or a mask', () => {
    const w = 60,
      h = 40;
    const { mask, interior } = canvas(w, h, [
      [5, 5, 25, 30],
      [25, 8, 50, 28],
    ]);
    const gt: [number, number, number, number, number, number] = [500000, 0.5, 0, 2700000, 0, -0.5];
    const prob = Float32Array.from(mask, (v) => v * 0.8);
    expect(vectorizeRaster(prob, w, h, gt)).toHaveLength(1);
    expect(vectorizeRaster(prob, w, h, gt, { interior })).toHaveLength(2);
    expect(vectorizeRaster(mask, w, h, gt, { interior })).toHaveLength(2);
    expect(Array.from(mask).reduce((s, v) => s + v, 0)).toBe(20 * 25 + 25 * 20); // the caller's mask is not changed
    expect(vectorizeRaster(prob, w, h, gt, { interior, interiorThreshold: 0.95 })).toHaveLength(1);
  });

  it('drops regions smaller than the minimum, keeping the rest as they are', () => {
    const w = 40,
      h = 20;
    const { mask } = canvas(w, h, [
      [2, 2, 12, 12],
      [20, 5, 23, 8],
      [30, 2, 31, 3],
    ]); // 100, 9 and 1 px
    expect(removeSmallRegions(mask, w, h, 10)).toBe(2);
    expect(mask.reduce((s, v) => s + v, 0)).toBe(100);
    expect(removeSmallRegions(mask, w, h, 1)).toBe(0);
  });
});
