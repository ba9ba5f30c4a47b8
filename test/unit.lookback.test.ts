import { describe, expect, it } from 'vitest';
import {
  dilate,
  footprintEvidence,
  judgeFootprint,
  lookbackScore,
  rasterisePolygons,
  type FootprintEvidence,
} from '../pipeline/lookback.judge.ts';
import { mulberry32 } from '../scripts/prng.ts';

const T = { goneAt: 0.6, standingAt: 0.4 };

/** A 96 × 96 scene: ground of random blobs and (withRoof) a 24 × 20 roof at (36, 38) with ridges; band-separate reflectance. */
function scene(seed: number, withRoof = true): { bands: Float32Array[]; roof: Uint8Array; w: number; h: number } {
  const w = 96,
    h = 96;
  const rand = mulberry32(seed);
  const coarse = Array.from({ length: 13 * 13 }, () => rand());
  const bands = [0, 1, 2].map(() => new Float32Array(w * h));
  const roof = new Uint8Array(w * h);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const g = 0.25 + 0.3 * coarse[Math.floor(y / 8) * 13 + Math.floor(x / 8)] + 0.05 * rand();
      const inRoof = x >= 36 && x < 60 && y >= 38 && y < 58;
      roof[i] = inRoof ? 1 : 0;
      const v = inRoof && withRoof ? 0.7 + (x % 6 < 2 ? 0.15 : 0) + 0.02 * rand() : g;
      bands[0][i] = v;
      bands[1][i] = v * 0.9;
      bands[2][i] = v * 0.8;
    }
  return { bands, roof, w, h };
}

/** `src` moved by (dx, dy) (out(x, y) = src(x − dx, y − dy), edges repeated), in other light. */
function moved(src: Float32Array[], w: number, h: number, dx: number, dy: number): Float32Array[] {
  return src.map((b) => {
    const out = new Float32Array(w * h);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const sx = Math.min(w - 1, Math.max(0, x - dx)),
          sy = Math.min(h - 1, Math.max(0, y - dy));
        out[y * w + x] = b[sy * w + sx] * 0.85 + 0.06;
      }
    return out;
  });
}

describe('回头看: the judgement of one footprint', () => {
  it('rasterises polygons by pixel centre, holes left out, and gives a speck its pixel', () => {
    const square = rasterisePolygons(
      [
        [
          [
            [1, 1],
            [5, 1],
            [5, 5],
            [1, 5],
            [1, 1],
          ],
        ],
      ],
      6,
      6,
    );
    expect(square.reduce((a, v) => a + v, 0)).toBe(16);
    const holed = rasterisePolygons(
      [
        [
          [
            [0, 0],
            [6, 0],
            [6, 6],
            [0, 6],
            [0, 0],
          ],
          [
            [2, 2],
            [4, 2],
            [4, 4],
            [2, 4],
            [2, 2],
          ],
        ],
      ],
      6,
      6,
    );
    expect(holed.reduce((a, v) => a + v, 0)).toBe(32);
    expect(holed[3 * 6 + 3]).toBe(0);
    const speck = rasterisePolygons(
      [
        [
          [
            [2.1, 3.1],
            [2.3, 3.1],
            [2.3, 3.3],
            [2.1, 3.1],
          ],
        ],
      ],
      6,
      6,
    );
    expect([...speck.keys()].filter((i) => speck[i])).toEqual([3 * 6 + 2]);
  });

  it('grows a mask by r pixels each way', () => {
    const m = new Uint8Array(49);
    m[3 * 7 + 3] = 1;
    expect(dilate(m, 7, 7, 2).reduce((a, v) => a + v, 0)).toBe(25);
    expect(dilate(m, 7, 7, 0)).toEqual(m);
  });

  it('finds a roof that still stands, however the months are lit and misregistered', () => {
    const { bands, roof, w, h } = scene(7);
    const now = moved(bands, w, h, 5, -3);
    const e = footprintEvidence(bands, now, new Uint8Array(w * h).fill(1), roof, w, h);
    expect(e.shift).toEqual([5, -3]);
    expect(e.corrIn).toBeGreaterThan(0.9);
    expect(judgeFootprint(e, T).result).toBe('standing');
  });

  it('finds a roof gone where its ground came back', () => {
    const { bands, roof, w, h } = scene(7);
    const ground = scene(8, false).bands; // ground where the roof was
    const now = moved(
      bands.map((b, k) => Float32Array.from(b, (v, i) => (roof[i] ? ground[k][i] : v))),
      w,
      h,
      5,
      -3,
    );
    const e = footprintEvidence(bands, now, new Uint8Array(w * h).fill(1), roof, w, h);
    const j = judgeFootprint(e, T);
    expect(j.result).toBe('gone');
    expect(j.score).toBeGreaterThan(0.9);
  });

  it('says no_imagery where less than half the footprint has data in both months', () => {
    const { bands, roof, w, h } = scene(7);
    const valid = new Uint8Array(w * h).fill(1);
    for (let i = 0; i < w * h; i++) if (i % w < 50) valid[i] = 0; // the roof's western 14 of 24 columns
    const j = judgeFootprint(footprintEvidence(bands, bands, valid, roof, w, h), T);
    expect(j).toMatchObject({ result: 'no_imagery', score: null });
    expect(j.validShare).toBeCloseTo(10 / 24, 2);
  });

  it('is unclear between the thresholds, and scores by difference against the ring and texture', () => {
    const at = (diffIn: number, diffRing: number, corrIn: number): FootprintEvidence => ({
      diffIn,
      diffRing,
      corrIn,
      validShare: 1,
      footprintPx: 100,
    });
    // as much difference as the surroundings, the same texture: standing; twice the difference, little texture left: gone
    expect(lookbackScore(at(0.05, 0.05, 0.9))).toBeLessThan(0.05);
    expect(lookbackScore(at(0.2, 0.05, 0.2))).toBeGreaterThan(0.95);
    const mid = at(0.115, 0.05, 0.45);
    expect(lookbackScore(mid)).toBeGreaterThan(T.standingAt);
    expect(lookbackScore(mid)).toBeLessThan(T.goneAt);
    expect(judgeFootprint(mid, T).result).toBe('unclear');
  });
});
