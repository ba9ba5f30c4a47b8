import { describe, expect, it } from 'vitest';
import { minRotatedRect, regularise, ringArea } from '../pipeline/regularise.ts';
import { vectorizeRaster } from '../pipeline/vectorize.ts';

const GSD = 0.5;

/** Rasterise a polygon given in metres (cell centres inside) at 0.5 m and trace it back: the staircase outline a change mask gives. */
function staircase(poly: number[][], size = 160): number[][][] {
  const mask = new Uint8Array(size * size);
  for (let r = 0; r < size; r++)
    for (let c = 0; c < size; c++) {
      const x = (c + 0.5) * GSD,
        y = -(r + 0.5) * GSD;
      let inside = false;
      for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
        const [xi, yi] = poly[i],
          [xj, yj] = poly[j];
        if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
      }
      mask[r * size + c] = inside ? 1 : 0;
    }
  const [f] = vectorizeRaster(mask, size, size, [0, GSD, 0, 0, 0, -GSD]);
  return f.geometry.coordinates as number[][][];
}

const rotate = (pts: number[][], deg: number, cx: number, cy: number) => {
  const a = (deg * Math.PI) / 180;
  return pts.map(([x, y]) => [
    cx + (x - cx) * Math.cos(a) - (y - cy) * Math.sin(a),
    cy + (x - cx) * Math.sin(a) + (y - cy) * Math.cos(a),
  ]);
};

/** Angles (degrees, 0..180) between consecutive edges of a closed ring. */
function corners(ring: number[][]): number[] {
  const pts = ring.slice(0, -1);
  return pts.map((p, i) => {
    const a = pts[(i - 1 + pts.length) % pts.length],
      b = pts[(i + 1) % pts.length];
    const v1 = [a[0] - p[0], a[1] - p[1]],
      v2 = [b[0] - p[0], b[1] - p[1]];
    return (Math.acos((v1[0] * v2[0] + v1[1] * v2[1]) / Math.hypot(...v1) / Math.hypot(...v2)) * 180) / Math.PI;
  });
}

describe('building regularisation', () => {
  it('finds the minimum rotated rectangle of a rotated box', () => {
    const box = rotate(
      [
        [10, -10],
        [30, -10],
        [30, -22],
        [10, -22],
      ],
      30,
      20,
      -16,
    );
    const r = minRotatedRect(box as [number, number][]);
    expect(r.area).toBeCloseTo(240, 6);
    expect(((r.angle * 180) / Math.PI + 360) % 90).toBeCloseTo(30, 6);
  });

  it('turns the staircase of a rotated rectangular roof into its rectangle, area within a few per cent', () => {
    const truth = rotate(
      [
        [20, -20],
        [44, -20],
        [44, -34],
        [20, -34],
      ],
      30,
      32,
      -27,
    );
    const rings = staircase(truth);
    expect(rings[0].length).toBeGreaterThan(20); // staircase
    const r = regularise(rings, { gsdM: GSD });
    expect(r.method).toBe('rectangle');
    expect(r.rings[0].length).toBe(5);
    expect(Math.abs(ringArea(r.rings[0]) - 24 * 14) / (24 * 14)).toBeLessThan(0.05);
    for (const a of corners(r.rings[0])) expect(a).toBeCloseTo(90, 3);
  });

  it('draws an L-shaped building at right angles in its own frame', () => {
    const L = rotate(
      [
        [20, -20],
        [50, -20],
        [50, -30],
        [32, -30],
        [32, -46],
        [20, -46],
      ],
      20,
      35,
      -33,
    );
    const rings = staircase(L);
    const r = regularise(rings, { gsdM: GSD });
    expect(r.method).toBe('orthogonal');
    expect(Math.abs(r.areaChange)).toBeLessThanOrEqual(0.1);
    const angles = corners(r.rings[0]);
    for (const a of angles) expect(Math.min(Math.abs(a - 90), Math.abs(a - 180))).toBeLessThan(1);
    expect(angles.length).toBeLessThan(rings[0].length / 2);
  });

  it('never changes the area by more than the limit, and leaves polygons with holes alone', () => {
    const notched = staircase([
      [20, -20],
      [50, -20],
      [50, -40],
      [40, -40],
      [40, -36],
      [30, -36],
      [30, -40],
      [20, -40],
    ]);
    for (const limit of [0.1, 0.02, 0.001]) {
      const r = regularise(notched, { gsdM: GSD, maxAreaChange: limit });
      expect(Math.abs(r.areaChange) <= limit || r.method === null).toBe(true);
      if (r.method === null) expect(r.rings).toBe(notched);
    }
    const ring = [
      [0, 0],
      [10, 0],
      [10, 10],
      [0, 10],
      [0, 0],
    ];
    const hole = [
      [3, 3],
      [3, 6],
      [6, 6],
      [6, 3],
      [3, 3],
    ];
    expect(regularise([ring, hole], { gsdM: GSD })).toMatchObject({ method: null, reason: 'has holes' });
  });
});
