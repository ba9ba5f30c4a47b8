import { lzwDecode } from '../pipeline/io/tiff.lzw.ts';
import { describe, expect, it } from 'vitest';
import { EPSG_4548 } from '../core/crs.ts';
import { parseLayer } from '../pipeline/layer.parse.ts';
import { normaliseBands, percentileStretch } from '../pipeline/raster.normalise.ts';
import type { RasterInfo } from '../pipeline/raster.source.ts';

const info = (sampleType: RasterInfo['sampleType'], nodata: number | null): RasterInfo => ({
  file: 't.tif',
  widthPx: 4,
  heightPx: 1,
  bandCount: 3,
  sampleType,
  nodata,
  crs: EPSG_4548,
  geoTransform: [0, 0.5, 0, 0, 0, -0.5],
});

describe('normaliseBands', () => {
  it('scales uint8 by 1/255 and masks pixels where every band is nodata', () => {
    const r = normaliseBands(info('uint8', 0), [
      Uint8Array.of(0, 255, 0, 51),
      Uint8Array.of(0, 255, 10, 51),
      Uint8Array.of(0, 255, 0, 51),
    ]);
    expect(Array.from(r.valid)).toEqual([0, 1, 1, 1]);
    expect(r.bands[0][1]).toBe(1);
    expect(r.bands[0][3]).toBeCloseTo(0.2, 6);
    expect(r.bands[0][0]).toBe(0);
  });

  it('stretches uint16 linearly between the given percentiles, clipped to 0..1', () => {
    const stretch = { low: [100, 100, 100], high: [1100, 1100, 1100] };
    const b = Uint16Array.of(50, 100, 600, 4000);
    const r = normaliseBands(info('uint16', null), [b, b, b], stretch);
    expect(Array.from(r.bands[0])).toEqual([0, 0, 0.5, 1]);
  });

  it('masks NaN in float rasters', () => {
    const b = Float32Array.of(0.1, Number.NaN, 0.3, 0.4);
    expect(
      Array.from(normaliseBands(info('float32', null), [b, b, b], { low: [0, 0, 0], high: [1, 1, 1] }).valid),
    ).toEqual([1, 0, 1, 1]);
  });

  it('takes the 2nd and 98th percentiles, ignoring nodata', () => {
    const b = Uint16Array.from({ length: 101 }, (_, i) => i * 10);
    const s = percentileStretch([b], 0);
    expect(s.low[0]).toBe(20); // 100 valid values 10..1000: index floor(99 × 0.02) = 1
    expect(s.high[0]).toBe(990);
  });
});

describe('parseLayer', () => {
  /** A small closed ring (a triangle), as a Polygon. */
  const triangle = {
    type: 'Polygon',
    coordinates: [
      [
        [0, 0],
        [1, 0],
        [1, 1],
        [0, 0],
      ],
    ],
  };

  it('reads the CRS from --srid, the crs member, or defaults to EPSG:4326', () => {
    const fc = (crs?: unknown) => JSON.stringify({ type: 'FeatureCollection', crs, features: [] });
    expect(parseLayer(fc(), 'a.geojson').srid).toBe(4326);
    expect(parseLayer(fc({ type: 'name', properties: { name: 'urn:ogc:def:crs:EPSG::4548' } }), 'a.geojson').srid).toBe(
      4548,
    );
    expect(parseLayer(fc({ type: 'name', properties: { name: 'EPSG:4490' } }), 'a.geojson', 32650).srid).toBe(32650);
    expect(() => parseLayer(fc({ type: 'name', properties: { name: 'local grid' } }), 'b.geojson')).toThrow(
      /b\.geojson: cannot read the "crs" member/,
    );
  });

  it('names the file when the JSON is broken or not a FeatureCollection', () => {
    expect(() => parseLayer('{"type":', 'broken.geojson')).toThrow(/broken\.geojson: not valid JSON/);
    expect(() => parseLayer('{"type":"Feature"}', 'one.geojson')).toThrow(
      /one\.geojson: expected a GeoJSON FeatureCollection/,
    );
  });

  it('maps common Chinese attribute names', () => {
    const text = JSON.stringify({
      type: 'FeatureCollection',
      features: [
        {
          type: 'Feature',
          properties: { 编号: 'P-1', 名称: '许可', 有效期起: '2024-01-01', 有效期止: '2024-12-31' },
          geometry: triangle,
        },
      ],
    });
    const [f] = parseLayer(text, 'p.geojson').features;
    expect(f).toMatchObject({ code: 'P-1', name: '许可', validFrom: '2024-01-01', validTo: '2024-12-31' });
  });

  it('rejects a non-finite coordinate and a reversed validity period with the feature index', () => {
    const text = JSON.stringify({
      type: 'FeatureCollection',
      features: [
        {
          type: 'Feature',
          properties: { code: 'A' },
          geometry: {
            type: 'Polygon',
            coordinates: [
              [
                [0, 0],
                [1, 'x'],
                [1, 1],
                [0, 0],
              ],
            ],
          },
        },
        {
          type: 'Feature',
          properties: { code: 'B', valid_from: '2025-01-01', valid_to: '2024-01-01' },
          geometry: triangle,
        },
      ],
    });
    const r = parseLayer(text, 'p.geojson');
    expect(r.features).toHaveLength(0);
    expect(r.rejected).toEqual([
      { index: 0, code: 'A', reason: 'coordinate [1,"x"] is not a pair of finite numbers' },
      { index: 1, code: 'B', reason: 'valid_from 2025-01-01 is after valid_to 2024-01-01' },
    ]);
  });

  it('rejects each bad feature once, by its first problem, and keeps the good ones', () => {
    const text = JSON.stringify({
      type: 'FeatureCollection',
      features: [
        {
          type: 'Feature',
          properties: { code: 'C', valid_from: '2024-13-01', valid_to: '31/12/2024' },
          geometry: triangle,
        },
        { type: 'Feature', properties: { code: 'D' }, geometry: null },
        { type: 'Point', properties: { code: 'E' } },
        { type: 'Feature', properties: { code: 'F', valid_to: '2024-12-31' }, geometry: triangle },
      ],
    });
    const r = parseLayer(text, 'p.geojson');
    expect(r.features.map((f) => f.code)).toEqual(['F']);
    expect(r.rejected).toEqual([
      { index: 0, code: 'C', reason: 'valid_from "2024-13-01" is not a date (YYYY-MM-DD)' },
      { index: 1, code: 'D', reason: 'geometry is null' },
      { index: 2, code: 'E', reason: 'not a GeoJSON Feature' },
    ]);
  });
});

describe('TIFF LZW decoder', () => {
  /** 9-bit codes packed MSB first, as TIFF writes them. */
  const pack = (codes: number[]) => {
    const bits = codes.map((c) => c.toString(2).padStart(9, '0')).join('');
    const bytes = new Uint8Array(Math.ceil(bits.length / 8));
    for (let i = 0; i < bits.length; i++) if (bits[i] === '1') bytes[i >> 3] |= 0x80 >> (i & 7);
    return bytes;
  };

  it('decodes literals, table codes and the KwKwK case', () => {
    // "ABABABA": A B, then 258 = "AB", 260 = "ABA" (defined by the code that uses it)
    const out = lzwDecode(pack([256, 65, 66, 258, 260, 257]), 7);
    expect(Buffer.from(out).toString('latin1')).toBe('ABABABA');
  });

  it('keeps what was decoded when the input ends without EndOfInformation, and drops output past the block', () => {
    expect(Buffer.from(lzwDecode(pack([256, 65, 66, 258]), 6)).toString('latin1')).toBe('ABAB\0\0');
    expect(Buffer.from(lzwDecode(pack([256, 65, 66, 258, 260, 257]), 5)).toString('latin1')).toBe('ABABA');
  });

  it('refuses a code beyond the table instead of writing garbage', () => {
    expect(() => lzwDecode(pack([256, 65, 300, 257]), 8)).toThrow(/code 300 is beyond the table/);
  });
});
