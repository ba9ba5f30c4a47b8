import { describe, expect, it } from 'vitest';
import { traceMask } from '../pipeline/mask.trace.ts';

function mask(rows: string[]): { data: Uint8Array; width: number; height: number } {
  const height = rows.length;
  const width = rows[0].length;
  const data = new Uint8Array(width * height);
  rows.forEach((r, y) => r.split('').forEach((ch, x) => (data[y * width + x] = ch === '#' ? 1 : 0)));
  return { data, width, height };
}

function ringArea(ring: number[][]): number {
  let a = 0;
  for (let i = 0; i + 1 < ring.length; i++) a += ring[i][0] * ring[i + 1][1] - ring[i + 1][0] * ring[i][1];
  return a / 2;
}

function polygonArea(poly: number[][][]): number {
  return Math.abs(ringArea(poly[0])) - poly.slice(1).reduce((s, h) => s + Math.abs(ringArea(h)), 0);
}

function trace(rows: string[]) {
  const m = mask(rows);
  return traceMask(m.data, m.width, m.height);
}

describe('traceMask', () => {
  it('traces a single pixel as a unit square with four corners', () => {
    const [c] = trace(['...', '.#.', '...']);
    expect(c.polygons).toHaveLength(1);
    const shell = c.polygons[0][0];
    expect(shell).toHaveLength(5);
    expect(shell[0]).toEqual(shell[4]);
    expect(new Set(shell.slice(0, 4).map((p) => p.join(',')))).toEqual(new Set(['1,1', '2,1', '2,2', '1,2']));
  });

  it('keeps a hole and emits only corner vertices', () => {
    const comps = trace(['#####', '#...#', '#...#', '#####']);
    expect(comps).toHaveLength(1);
    const [poly] = comps[0].polygons;
    expect(poly).toHaveLength(2);
    expect(poly[0]).toHaveLength(5);
    expect(poly[1]).toHaveLength(5);
    expect(Math.abs(ringArea(poly[0]))).toBe(20);
    expect(Math.abs(ringArea(poly[1]))).toBe(6);
    // shell and hole are wound in opposite directions
    expect(Math.sign(ringArea(poly[0]))).toBe(-Math.sign(ringArea(poly[1])));
    expect(comps[0].pixelCount).toBe(14);
  });

  it('joins diagonal pixels into one feature (8-connectivity) made of two polygons touching at a corner', () => {
    const comps = trace(['#.', '.#']);
    expect(comps).toHaveLength(1);
    expect(comps[0].polygons).toHaveLength(2);
    expect(comps[0].pixelCount).toBe(2);
    for (const p of comps[0].polygons) expect(p[0]).toHaveLength(5);
  });

  it('keeps squares separated by one background column apart', () => {
    const comps = trace(['##.##', '##.##']);
    expect(comps).toHaveLength(2);
    expect(comps.map((c) => c.pixelCount)).toEqual([4, 4]);
  });

  it('merges touching squares into one rectangle', () => {
    const comps = trace(['####', '####']);
    expect(comps).toHaveLength(1);
    expect(comps[0].polygons[0][0]).toHaveLength(5);
    expect(Math.abs(ringArea(comps[0].polygons[0][0]))).toBe(8);
  });

  it('treats a ring closed only by a diagonal as enclosing a hole (background is 4-connected)', () => {
    // The hole at the centre touches the shell only at the diagonal pinch.
    const comps = trace(['###.', '#.#.', '##.#', '...#'].map((r) => r));
    expect(comps).toHaveLength(1);
    const total = comps[0].polygons.reduce((s, p) => s + polygonArea(p), 0);
    expect(total).toBe(comps[0].pixelCount);
  });

  it('keeps every polygon area equal to its pixel count on a random mask', () => {
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    const width = 40,
      height = 30;
    const data = new Uint8Array(width * height).map(() => (rnd() < 0.45 ? 1 : 0));
    const comps = traceMask(data, width, height);
    const pixels = data.reduce((s, v) => s + v, 0);
    expect(comps.reduce((s, c) => s + c.pixelCount, 0)).toBe(pixels);
    for (const c of comps) expect(c.polygons.reduce((s, p) => s + polygonArea(p), 0)).toBe(c.pixelCount);
  });

  it('sums per-pixel values per component', () => {
    const m = mask(['##..', '...#']);
    const values = new Float32Array([0.5, 1, 0, 0, 0, 0, 0, 0.25]);
    const comps = traceMask(m.data, m.width, m.height, values);
    expect(comps.map((c) => c.valueSum).sort((a, b) => a - b)).toEqual([0.25, 1.5]);
  });
});
