import { describe, expect, it } from 'vitest';
import { crsFromGeoKeys } from '../core/crs.ts';
import { BadInputError } from '../core/errors.ts';
import {
  gsdMetres,
  invertGeoTransform,
  pixelToWorld,
  worldToPixel,
  type GeoTransform,
} from '../pipeline/geotransform.ts';
import { axisStarts, axisWindows, blendWeights, windowGrid } from '../pipeline/window.grid.ts';

describe('geotransform', () => {
  const gt: GeoTransform = [611200, 0.5, 0, 2713600, 0, -0.5];

  it('maps pixel corners to world coordinates and back', () => {
    expect(pixelToWorld(gt, 0, 0)).toEqual({ x: 611200, y: 2713600 });
    expect(pixelToWorld(gt, 1024, 1024)).toEqual({ x: 611712, y: 2713088 });
    for (const [c, r] of [
      [0, 0],
      [10.25, 3.5],
      [1023, 1],
      [0.5, 0.5],
    ]) {
      const w = pixelToWorld(gt, c, r);
      const p = worldToPixel(gt, w.x, w.y);
      expect(p.col).toBeCloseTo(c, 9);
      expect(p.row).toBeCloseTo(r, 9);
    }
  });

  it('round-trips a rotated geotransform', () => {
    const rot: GeoTransform = [1000, 0.4, 0.3, 5000, 0.3, -0.4];
    const inv = invertGeoTransform(invertGeoTransform(rot));
    inv.forEach((v, i) => expect(v).toBeCloseTo(rot[i], 9));
    const w = pixelToWorld(rot, 7, 9);
    const p = worldToPixel(rot, w.x, w.y);
    expect(p.col).toBeCloseTo(7, 9);
    expect(p.row).toBeCloseTo(9, 9);
  });

  it('reports GSD in metres for projected and geographic grids', () => {
    expect(gsdMetres(gt, false)).toEqual({ x: 0.5, y: 0.5 });
    const geo: GeoTransform = [118, 0.5 / 111_320, 0, 24.5, 0, -0.5 / 111_320];
    const g = gsdMetres(geo, true, 24.5);
    expect(g.y).toBeCloseTo(0.5, 6);
    expect(g.x).toBeCloseTo(0.5 * Math.cos((24.5 * Math.PI) / 180), 6);
  });
});

describe('CRS from GeoKeys', () => {
  it('reads projected and geographic EPSG codes', () => {
    expect(
      crsFromGeoKeys({ GTModelTypeGeoKey: 1, ProjectedCSTypeGeoKey: 4548, ProjLinearUnitsGeoKey: 9001 }, 'a.tif'),
    ).toEqual({ epsg: 4548, geographic: false });
    expect(crsFromGeoKeys({ GTModelTypeGeoKey: 2, GeographicTypeGeoKey: 4490 }, 'a.tif')).toEqual({
      epsg: 4490,
      geographic: true,
    });
  });

  it('refuses user-defined and missing CRSs, naming the file', () => {
    expect(() => crsFromGeoKeys({ GTModelTypeGeoKey: 1, ProjectedCSTypeGeoKey: 32767 }, 'tiles/x.tif')).toThrow(
      /tiles\/x\.tif: projected CRS is user-defined/,
    );
    expect(() => crsFromGeoKeys(null, 'y.tif')).toThrow(BadInputError);
    expect(() =>
      crsFromGeoKeys({ GTModelTypeGeoKey: 1, ProjectedCSTypeGeoKey: 2385, ProjLinearUnitsGeoKey: 9002 }, 'ft.tif'),
    ).toThrow(/only metres/);
  });
});

describe('window grid', () => {
  it('covers an axis with overlapping windows, the last flush with the end', () => {
    expect(axisStarts(1024, 512, 64)).toEqual([0, 448, 512]);
    expect(axisStarts(300, 512, 64)).toEqual([0]);
    expect(axisStarts(512, 512, 64)).toEqual([0]);
    expect(axisStarts(1000, 256, 0)).toEqual([0, 256, 512, 744]);
  });

  it('spreads the fewest windows evenly, each overlap at least the minimum', () => {
    // 1000 px in windows of ≤ 512 with ≥ 64 overlap: 3 windows are needed; 3 × 376 covers 1000 with 64 px twice
    expect(axisWindows(1000, 512, 64)).toEqual({ starts: [0, 312, 624], size: 376 });
    // rounded up to a multiple of 16: 384, overlaps 76 and 76
    expect(axisWindows(1000, 512, 64, 16)).toEqual({ starts: [0, 308, 616], size: 384 });
    expect(axisWindows(1024, 1024, 64, 16)).toEqual({ starts: [0], size: 1024 });
    expect(axisWindows(3200, 1024, 64, 16)).toEqual({ starts: [0, 784, 1568, 2352], size: 848 });
    for (const [len, max, ov, mult] of [
      [1000, 512, 64, 16],
      [4097, 1000, 37, 1],
      [9000, 1024, 64, 16],
      [513, 512, 64, 16],
      [70, 32, 8, 16],
    ]) {
      const { starts, size } = axisWindows(len, max, ov, mult);
      expect(size).toBeLessThanOrEqual(max);
      expect(starts[0]).toBe(0);
      expect(starts.at(-1)! + size).toBe(len);
      for (let i = 1; i < starts.length; i++) expect(starts[i - 1] + size - starts[i]).toBeGreaterThanOrEqual(ov);
      // one window fewer could not cover the axis
      expect((starts.length - 1) * (max - ov) + ov).toBeLessThan(len);
    }
  });

  it('tiles a raster at the scene edge with windows of one size', () => {
    const wins = windowGrid(1000, 700, { tileSizePx: 512, maxWindowPx: 512, overlapPx: 64 }).windows;
    expect(wins).toHaveLength(6); // x: 0, 308, 616 (384 wide); y: 0, 316 (384 high)
    for (const w of wins) {
      expect(w.x + w.width).toBeLessThanOrEqual(1000);
      expect(w.y + w.height).toBeLessThanOrEqual(700);
      expect([w.width, w.height]).toEqual([384, 384]);
    }
    const covered = new Uint8Array(1000 * 700);
    for (const w of wins)
      for (let r = w.y; r < w.y + w.height; r++) covered.fill(1, r * 1000 + w.x, r * 1000 + w.x + w.width);
    expect(covered.every((v) => v === 1)).toBe(true);
  });

  it('ramps blend weights only on interior edges', () => {
    const w = blendWeights({ x: 0, y: 0, width: 8, height: 1 }, 16, 1, 4);
    expect(w[0]).toBe(1); // raster border: full weight
    expect(w[7]).toBeCloseTo(0.125);
    expect(w[3]).toBe(1);
    expect(w[4]).toBeCloseTo(0.875);
  });
});
