import { describe, expect, it } from 'vitest';
import { vectorizeRaster } from '../pipeline/vectorize.ts';
import type { GeoTransform } from '../pipeline/geotransform.ts';

const gt: GeoTransform = [611200, 0.5, 0, 2713600, 0, -0.5];

function maskFrom(rows: string[]): { data: Uint8Array; w: number; h: number } {
  const h = rows.length,
    w = rows[0].length;
  const data = new Uint8Array(w * h);
  rows.forEach((r, y) => r.split('').forEach((c, x) => (data[y * w + x] = c === '#' ? 1 : 0)));
  return { data, w, h };
}

describe('vectorizeRaster', () => {
  it('places polygons at pixel corners through the geotransform, shells counter-clockwise', () => {
    const m = maskFrom(['....', '.##.', '.##.', '....']);
    const [f] = vectorizeRaster(m.data, m.w, m.h, gt);
    expect(f.geometry.type).toBe('Polygon');
    const ring = (f.geometry.coordinates as number[][][])[0];
    const xs = ring.map((p) => p[0]),
      ys = ring.map((p) => p[1]);
    expect(Math.min(...xs)).toBe(611200.5);
    expect(Math.max(...xs)).toBe(611201.5);
    expect(Math.max(...ys)).toBe(2713599.5);
    expect(Math.min(...ys)).toBe(2713598.5);
    let a = 0;
    for (let i = 0; i + 1 < ring.length; i++) a += ring[i][0] * ring[i + 1][1] - ring[i + 1][0] * ring[i][1];
    expect(a).toBeGreaterThan(0);
    expect(f.properties.area_m2).toBe(1); // 4 px × 0.25 m²
  });

  it('keeps holes (clockwise) and drops polygons under the minimum area', () => {
    const m = maskFrom(['#####...', '#...#...', '#####..#']);
    const all = vectorizeRaster(m.data, m.w, m.h, gt);
    expect(all).toHaveLength(2);
    const big = all.find((f) => f.properties.pixel_count === 12)!;
    expect((big.geometry.coordinates as number[][][]).length).toBe(2);
    expect(big.properties.area_m2).toBe(3);
    const kept = vectorizeRaster(m.data, m.w, m.h, gt, { minAreaM2: 1 });
    expect(kept).toHaveLength(1);
  });

  it('thresholds probabilities and reports the mean probability of each polygon', () => {
    const p = new Float32Array([0.9, 0.7, 0.1, 0.2, 0.6, 0.3]);
    const [f] = vectorizeRaster(p, 3, 2, gt, { threshold: 0.5 });
    expect(f.properties.pixel_count).toBe(3);
    expect(f.properties.mean_probability).toBeCloseTo((0.9 + 0.7 + 0.6) / 3, 4);
  });

  it('simplifies a staircase in metres without changing its extent much', () => {
    const rows = Array.from({ length: 40 }, (_, y) =>
      Array.from({ length: 40 }, (_, x) => (x + y < 40 ? '#' : '.')).join(''),
    );
    const m = maskFrom(rows);
    const [exact] = vectorizeRaster(m.data, m.w, m.h, gt);
    const [simple] = vectorizeRaster(m.data, m.w, m.h, gt, { simplifyToleranceM: 1 });
    const n = (f: typeof exact) => (f.geometry.coordinates as number[][][])[0].length;
    expect(n(exact)).toBeGreaterThan(70);
    expect(n(simple)).toBeLessThan(10);
  });
});
