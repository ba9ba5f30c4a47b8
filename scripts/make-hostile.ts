/**
 * Writes the hostile-input corpus: damaged and misleading files a city delivery can contain,
 * each with the named error tuban must answer with (expectations.json beside them).
 * Tiles sit inside the fixture scene (EPSG:4548) so that only their defect decides their fate.
 *
 * Run: npx tsx scripts/make-hostile.ts OUT_DIR
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crs, EPSG_4548 } from '../core/crs.ts';
import { encodeGeoTiff } from '../pipeline/io/geotiff.write.ts';

export interface HostileCase {
  file: string;
  /** Where tuban must stop it: at registration / layer import, or as a failed tile in the batch. */
  stage: 'register' | 'batch' | 'layer';
  code: string;
  what: string;
}

const X0 = 611200 + 100;
const Y0 = 2713600 - 100;
const N = 64;

function tile(
  samples: Uint8Array | Float32Array,
  opts: { gsd?: number; epsg?: number; nodata?: number; x0?: number } = {},
): Buffer {
  const gsd = opts.gsd ?? 0.5;
  return Buffer.from(
    encodeGeoTiff({
      widthPx: N,
      heightPx: N,
      samples,
      bands: 3,
      crs: opts.epsg ? crs(opts.epsg, false) : EPSG_4548,
      geoTransform: [opts.x0 ?? X0, gsd, 0, Y0, 0, -gsd],
      nodata: opts.nodata,
    }),
  );
}

/** Byte-order-aware access to a classic TIFF's first IFD (either byte order, as TIFF allows). */
function tiffIo(buf: Buffer) {
  const le = buf.toString('latin1', 0, 2) === 'II';
  const u16 = (o: number) => (le ? buf.readUInt16LE(o) : buf.readUInt16BE(o));
  const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const w16 = (v: number, o: number) => (le ? buf.writeUInt16LE(v, o) : buf.writeUInt16BE(v, o));
  const w32 = (v: number, o: number) => (le ? buf.writeUInt32LE(v, o) : buf.writeUInt32BE(v, o));
  const ifd = u32(4);
  return { ifd, n: u16(ifd), u16, w16, w32 };
}

export function makeHostile(outDir: string): HostileCase[] {
  const dir = resolve(outDir);
  mkdirSync(dir, { recursive: true });
  const cases: HostileCase[] = [];
  const put = (c: HostileCase, bytes: Buffer | string) => {
    writeFileSync(join(dir, c.file), bytes);
    cases.push(c);
  };
  const grey = new Uint8Array(N * N * 3).fill(120);

  const truncated = tile(grey);
  put(
    {
      file: 'truncated.tif',
      stage: 'register',
      code: 'corrupt_tiff',
      what: 'file cut to a third: header readable, pixel data missing',
    },
    truncated.subarray(0, Math.floor(truncated.length / 3)),
  );

  const magic = Buffer.from(tile(grey));
  tiffIo(magic).w16(41, 2);
  put(
    { file: 'wrong-magic.tif', stage: 'register', code: 'corrupt_tiff', what: 'TIFF magic number 41 instead of 42' },
    magic,
  );

  const loop = Buffer.from(tile(grey));
  const l = tiffIo(loop);
  l.w32(l.ifd, l.ifd + 2 + l.n * 12);
  put(
    {
      file: 'ifd-loop.tif',
      stage: 'register',
      code: 'corrupt_tiff',
      what: 'next-IFD pointer points back at the first IFD',
    },
    loop,
  );

  const absurd = Buffer.from(tile(grey));
  const a = tiffIo(absurd);
  for (let i = 0; i < a.n; i++) {
    const e = a.ifd + 2 + i * 12;
    const tag = a.u16(e);
    if (tag === 256 || tag === 257) {
      a.w16(4, e + 2); // LONG
      a.w32(1, e + 4);
      a.w32(3_000_000_000, e + 8);
    }
  }
  put(
    {
      file: 'absurd-size.tif',
      stage: 'register',
      code: 'absurd_size',
      what: 'header claims 3,000,000,000 × 3,000,000,000 px',
    },
    absurd,
  );

  put(
    {
      file: 'unknown-crs.tif',
      stage: 'register',
      code: 'unknown_crs',
      what: 'ProjectedCSTypeGeoKey 32767 (user-defined)',
    },
    tile(grey, { epsg: 32767 }),
  );
  put(
    { file: 'gsd-2m.tif', stage: 'register', code: 'gsd_mismatch', what: '2 m pixels where 0.5 m is configured' },
    tile(grey, { gsd: 2 }),
  );
  put(
    { file: 'all-nodata.tif', stage: 'batch', code: 'all_nodata', what: 'every pixel equals the nodata value 0' },
    tile(new Uint8Array(N * N * 3), { nodata: 0 }),
  );
  put(
    { file: 'nan-float.tif', stage: 'batch', code: 'all_nodata', what: 'float32 tile filled with NaN' },
    tile(new Float32Array(N * N * 3).fill(Number.NaN)),
  );
  put(
    {
      file: 'no-baseline.tif',
      stage: 'batch',
      code: 'no_baseline',
      what: 'a good tile 50 km away from any baseline image',
    },
    tile(grey, { x0: X0 + 50_000 }),
  );

  const sq = (x: number, y: number, s: number) => [
    [
      [x, y],
      [x + s, y],
      [x + s, y + s],
      [x, y + s],
      [x, y],
    ],
  ];
  put(
    {
      file: 'layer-mixed.geojson',
      stage: 'layer',
      code: 'partly_rejected',
      what: 'a good farmland polygon, a bow-tie (repaired), an empty polygon and a lon/lat polygon in a layer declared EPSG:4548',
    },
    JSON.stringify({
      type: 'FeatureCollection',
      crs: { type: 'name', properties: { name: 'urn:ogc:def:crs:EPSG::4548' } },
      features: [
        {
          type: 'Feature',
          properties: { code: 'GOOD' },
          geometry: { type: 'Polygon', coordinates: sq(X0, Y0 - 50, 40) },
        },
        {
          type: 'Feature',
          properties: { code: 'BOWTIE' },
          geometry: {
            type: 'Polygon',
            coordinates: [
              [
                [X0, Y0],
                [X0 + 10, Y0 + 10],
                [X0 + 10, Y0],
                [X0, Y0 + 10],
                [X0, Y0],
              ],
            ],
          },
        },
        { type: 'Feature', properties: { code: 'EMPTY' }, geometry: { type: 'Polygon', coordinates: [] } },
        {
          type: 'Feature',
          properties: { code: 'LONLAT' },
          geometry: { type: 'Polygon', coordinates: sq(118.1, 24.5, 0.001) },
        },
      ],
    }),
  );
  const gbkName = Buffer.from([0xba, 0xfe, 0xc0, 0xef]); // "湖里" in GBK
  put(
    { file: 'layer-gbk.geojson', stage: 'layer', code: 'not_utf8', what: 'attribute text in GBK, not UTF-8' },
    Buffer.concat([
      Buffer.from('{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"name":"'),
      gbkName,
      Buffer.from(`"},"geometry":{"type":"Polygon","coordinates":${JSON.stringify(sq(X0, Y0 - 50, 40))}}}]}`),
    ]),
  );
  writeFileSync(join(dir, 'expectations.json'), JSON.stringify(cases, null, 2));
  return cases;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const out = process.argv[2];
  if (!out) throw new Error('usage: tsx scripts/make-hostile.ts OUT_DIR');
  const cases = makeHostile(out);
  console.log(`${cases.length} hostile inputs written to ${resolve(out)}`);
}
