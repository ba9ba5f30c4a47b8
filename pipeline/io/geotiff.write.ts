import { writeFileSync } from 'node:fs';
import { endianness } from 'node:os';
import type { Crs } from '../../core/crs.ts';
import { isNorthUp, type GeoTransform } from '../geotransform.ts';

export interface WriteRasterInput {
  widthPx: number;
  heightPx: number;
  /** Pixel-interleaved samples (band-fastest), length width × height × bands. */
  samples: Uint8Array | Uint16Array | Float32Array;
  bands: number;
  crs: Crs;
  geoTransform: GeoTransform;
  nodata?: number | null;
}

/**
 * An uncompressed, single-strip, little-endian GeoTIFF with full georeferencing: ModelTiepoint +
 * ModelPixelScale for north-up grids, ModelTransformation otherwise, and the EPSG code in the
 * GeoKeys; PixelIsArea, as GDAL writes by default; GDAL_NODATA when given. Written directly: the
 * samples are copied once (geotiff.js's writer allocates per sample and took 1.2 s for a 1024² RGB
 * preview). Read back by geotiff.js and GDAL in the tests.
 */
export function encodeGeoTiff(input: WriteRasterInput): ArrayBuffer {
  const { widthPx: w, heightPx: h, bands, samples } = input;
  if (samples.length !== w * h * bands)
    throw new Error(`encodeGeoTiff: ${samples.length} samples for ${w} × ${h} px of ${bands} band(s)`);
  if (endianness() !== 'LE') throw new Error('encodeGeoTiff: writes the samples as they lie in memory, little-endian');
  const gt = input.geoTransform;
  const crs = input.crs;
  const rgb = bands >= 3 && samples instanceof Uint8Array;
  const extra = bands - (rgb ? 3 : 1); // samples beyond the photometric's colour channels: ExtraSamples, unspecified
  const tags: { tag: number; type: 2 | 3 | 4 | 12; values: number[] | string }[] = [
    { tag: 256, type: 4, values: [w] },
    { tag: 257, type: 4, values: [h] },
    { tag: 258, type: 3, values: Array(bands).fill(samples.BYTES_PER_ELEMENT * 8) },
    { tag: 259, type: 3, values: [1] }, // no compression
    { tag: 262, type: 3, values: [rgb ? 2 : 1] }, // RGB, else grey (BlackIsZero)
    { tag: 273, type: 4, values: [0] }, // StripOffsets, set below
    { tag: 277, type: 3, values: [bands] },
    { tag: 278, type: 4, values: [h] }, // one strip
    { tag: 279, type: 4, values: [samples.byteLength] },
    { tag: 284, type: 3, values: [1] }, // pixel-interleaved
    ...(extra > 0 ? [{ tag: 338, type: 3 as const, values: Array(extra).fill(0) }] : []),
    { tag: 339, type: 3, values: Array(bands).fill(samples instanceof Float32Array ? 3 : 1) },
    ...(isNorthUp(gt)
      ? [
          { tag: 33550, type: 12 as const, values: [gt[1], -gt[5], 0] },
          { tag: 33922, type: 12 as const, values: [0, 0, 0, gt[0], gt[3], 0] },
        ]
      : [
          {
            tag: 34264,
            type: 12 as const,
            values: [gt[1], gt[2], 0, gt[0], gt[4], gt[5], 0, gt[3], 0, 0, 0, 0, 0, 0, 0, 1],
          },
        ]),
    // GeoKeyDirectory: version 1.1.0, 3 keys: model type, raster type (PixelIsArea), the CRS's EPSG code
    {
      tag: 34735,
      type: 3,
      values: [
        1,
        1,
        0,
        3,
        1024,
        0,
        1,
        crs.geographic ? 2 : 1,
        1025,
        0,
        1,
        1,
        crs.geographic ? 2048 : 3072,
        0,
        1,
        crs.epsg,
      ],
    },
    ...(input.nodata !== undefined && input.nodata !== null
      ? [{ tag: 42113, type: 2 as const, values: `${input.nodata}\0` }]
      : []),
  ];
  const size = { 2: 1, 3: 2, 4: 4, 12: 8 } as const;
  const count = (t: (typeof tags)[number]) => t.values.length;
  const ifdBytes = 2 + 12 * tags.length + 4;
  // values longer than 4 bytes go after the IFD, each at an 8-byte boundary; the strip after them
  const align = (n: number) => (n + 7) & ~7;
  let at = align(8 + ifdBytes);
  const outside = new Map<number, number>();
  for (const t of tags)
    if (count(t) * size[t.type] > 4) {
      outside.set(t.tag, at);
      at = align(at + count(t) * size[t.type]);
    }
  const stripAt = at;
  tags.find((t) => t.tag === 273)!.values = [stripAt];
  const buf = new ArrayBuffer(stripAt + samples.byteLength);
  const v = new DataView(buf);
  v.setUint8(0, 0x49);
  v.setUint8(1, 0x49); // "II": little-endian
  v.setUint16(2, 42, true);
  v.setUint32(4, 8, true);
  v.setUint16(8, tags.length, true);
  const put = (t: (typeof tags)[number], o: number) => {
    if (typeof t.values === 'string') {
      for (let i = 0; i < t.values.length; i++) v.setUint8(o + i, t.values.charCodeAt(i));
      return;
    }
    for (const [i, x] of t.values.entries()) {
      if (t.type === 3) v.setUint16(o + 2 * i, x, true);
      else if (t.type === 4) v.setUint32(o + 4 * i, x, true);
      else v.setFloat64(o + 8 * i, x, true);
    }
  };
  for (const [i, t] of tags.entries()) {
    const e = 10 + 12 * i;
    v.setUint16(e, t.tag, true);
    v.setUint16(e + 2, t.type, true);
    v.setUint32(e + 4, count(t), true);
    const off = outside.get(t.tag);
    if (off === undefined) put(t, e + 8);
    else {
      v.setUint32(e + 8, off, true);
      put(t, off);
    }
  }
  v.setUint32(10 + 12 * tags.length, 0, true); // no next IFD
  new Uint8Array(buf, stripAt).set(new Uint8Array(samples.buffer, samples.byteOffset, samples.byteLength));
  return buf;
}

/** encodeGeoTiff written to `file`. */
export function writeGeoTiff(file: string, input: WriteRasterInput): void {
  writeFileSync(file, new Uint8Array(encodeGeoTiff(input)));
}
