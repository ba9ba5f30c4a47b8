import { describe, expect, it } from 'vitest';
import { crsFromGeoKeys } from '../pipeline/crs.ts';
import { BadInputError } from '../pipeline/errors.ts';
import { gsdMetres, invertGeoTransform, pixelToWorld, worldToPixel, type GeoTransform } from '../pipeline/geotransform.ts';
import { axisStarts, blendWeights, windowGrid } from '../pipeline/window.grid.ts';

describe('geotransform', () => {
  const gt: GeoTransform = [611200, 0.5, 0, 2713600, 0, -0.5];

  it('maps pixel corners to world coordinates and back', () => {
    expect(pixelToWorld(gt, 0, 0)).toEqual({ x: 611200, y: 2713600 });
    expect(pixelToWorld(gt, 1024, 1024)).toEqual({ x: 611712, y: 2713088 });
    for (const [c, r] of [[0, 0], [10.25, 3.5], [1023, 1], [0.5, 0.5]]) {
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
    expect(crsFromGeoKeys({ GTModelTypeGeoKey: 1, ProjectedCSTypeGeoKey: 4548, ProjLinearUnitsGeoKey: 9001 }, 'a.tif')).toEqual({ epsg: 4548, geographic: false });
    expect(crsFromGeoKeys({ GTModelTypeGeoKey: 2, GeographicTypeGeoKey: 4490 }, 'a.tif')).toEqual({ epsg: 4490, geographic: true });
  });

  it('refuses user-defined and missing CRSs, naming the file', () => {
    expect(() => crsFromGeoKeys({ GTModelTypeGeoKey: 1, ProjectedCSTypeGeoKey: 32767 }, 'tiles/x.tif')).toThrow(/tiles\/x\.tif: projected CRS is user-defined/);
    expect(() => crsFromGeoKeys(null, 'y.tif')).toThrow(BadInputError);
    expect(() => crsFromGeoKeys({ GTModelTypeGeoKey: 1, ProjectedCSTypeGeoKey: 2385, ProjLinearUnitsGeoKey: 9002 }, 'ft.tif')).toThrow(/only metres/);
  });
});

describe('window grid', () => {
  it('covers an axis with overlapping windows, the last flush with the end', () => {
    expect(axisStarts(1024, 512, 64)).toEqual([0, 448, 512]);
    expect(axisStarts(300, 512, 64)).toEqual([0]);
    expect(axisStarts(512, 512, 64)).toEqual([0]);
    expect(axisStarts(1000, 256, 0)).toEqual([0, 256, 512, 744]);
  });

  it('tiles a raster at the scene edge with full-size windows', () => {
    const wins = windowGrid(1000, 700, 512, 64);
    expect(wins).toHaveLength(6); // x: 0, 448, 488; y: 0, 188
    for (const w of wins) {
      expect(w.x + w.width).toBeLessThanOrEqual(1000);
      expect(w.y + w.height).toBeLessThanOrEqual(700);
      expect(w.width).toBe(512);
    }
    const covered = new Uint8Array(1000 * 700);
    for (const w of wins) for (let r = w.y; r < w.y + w.height; r++) covered.fill(1, r * 1000 + w.x, r * 1000 + w.x + w.width);
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
