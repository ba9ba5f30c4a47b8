import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { crs, EPSG_4548 } from '../core/crs.ts';
import type { GeoTransform } from '../pipeline/geotransform.ts';
import { GeoTiffSource } from '../pipeline/io/geotiff.source.ts';
import { writeGeoTiff } from '../pipeline/io/geotiff.write.ts';

/**
 * Files written by GDAL itself (gdal_translate, gdalwarp, -of COG) must read exactly as GDAL
 * reads them: every pixel equal to `gdal_translate -of ENVI` raw output, the geotransform equal to
 * `gdalinfo -json`. JPEG is lossy and decoded by another library, so it may differ by a little.
 */
const SHARED = join(process.cwd(), '..', 'shared', 'data', 'geotiff');

function gdalRaw(file: string, dir: string, name: string): { data: Buffer; type: string } {
  const out = join(dir, `${name}.raw`);
  execFileSync('gdal_translate', ['-q', '-of', 'ENVI', '-co', 'INTERLEAVE=BSQ', file, out]);
  const hdr = readFileSync(`${out.replace(/\.raw$/, '')}.hdr`, 'utf8');
  return { data: readFileSync(out), type: /data type = (\d+)/.exec(hdr)![1] };
}

function gdalInfo(file: string): { geoTransform: number[]; size: number[]; bands: number; epsg: number | null } {
  const j = JSON.parse(execFileSync('gdalinfo', ['-json', file], { encoding: 'utf8' }));
  const epsg = /ID\["EPSG",(\d+)\]\]$/.exec((j.coordinateSystem?.wkt ?? '').replace(/\s+/g, ''));
  return { geoTransform: j.geoTransform, size: j.size, bands: j.bands.length, epsg: epsg ? Number(epsg[1]) : null };
}

/** Files whose window was also read pixel-interleaved (the fast reader's layouts). */
const interleaved = new Set<string>();

async function compare(file: string, dir: string, name: string, tolerance = 0) {
  const src = await GeoTiffSource.open(file);
  try {
    const info = gdalInfo(file);
    expect([src.info.widthPx, src.info.heightPx], `${name} size`).toEqual(info.size);
    expect(src.info.bandCount, `${name} bands`).toBe(info.bands);
    src.info.geoTransform.forEach((v, i) =>
      expect(v, `${name} geotransform[${i}]`).toBeCloseTo(info.geoTransform[i], 9),
    );
    if (info.epsg) expect(src.info.crs.epsg, `${name} EPSG`).toBe(info.epsg);
    const raw = gdalRaw(file, dir, name);
    const bands = await src.readWindow({ x: 0, y: 0, width: src.info.widthPx, height: src.info.heightPx });
    const n = src.info.widthPx * src.info.heightPx;
    const bytes = raw.type === '1' ? 1 : raw.type === '12' || raw.type === '2' ? 2 : 4;
    const expected = (b: number, i: number) =>
      bytes === 1
        ? raw.data[b * n + i]
        : bytes === 2
          ? raw.data.readUInt16LE((b * n + i) * 2)
          : raw.data.readFloatLE((b * n + i) * 4);
    let maxDiff = 0;
    let sumDiff = 0;
    let within2 = 0;
    for (let b = 0; b < bands.length; b++)
      for (let i = 0; i < n; i++) {
        const d = Math.abs(bands[b][i] - expected(b, i));
        maxDiff = Math.max(maxDiff, d);
        sumDiff += d;
        if (d <= 2) within2++;
      }
    const stats = { maxDiff, meanDiff: sumDiff / (n * bands.length), within2: within2 / (n * bands.length) };
    if (tolerance === 0) expect(maxDiff, `${name}: largest difference from GDAL's pixels`).toBe(0);
    // a window that starts and ends inside blocks, with the bands in another order
    const w = {
      x: Math.min(37, src.info.widthPx - 1),
      y: Math.min(51, src.info.heightPx - 1),
      width: Math.min(300, src.info.widthPx - 37),
      height: Math.min(211, src.info.heightPx - 51),
    };
    const order = [...Array(src.info.bandCount).keys()].reverse();
    const part = await src.readWindow(w, order);
    let partDiff = 0;
    for (const [k, b] of order.entries())
      for (let r = 0; r < w.height; r++)
        for (let c = 0; c < w.width; c++) {
          partDiff = Math.max(
            partDiff,
            Math.abs(part[k][r * w.width + c] - bands[b][(w.y + r) * src.info.widthPx + w.x + c]),
          );
        }
    expect(partDiff, `${name}: a window inside blocks equals the same pixels of the whole read`).toBe(0);
    // the same window pixel-interleaved, where the reader hands samples over as stored
    const inter = await src.readInterleaved(w);
    if (inter) {
      const nb = src.info.bandCount;
      expect(inter.samples).toBe(nb);
      let interDiff = 0;
      for (let b = 0; b < nb; b++)
        for (let r = 0; r < w.height; r++)
          for (let c = 0; c < w.width; c++) {
            interDiff = Math.max(
              interDiff,
              Math.abs(inter.data[(r * w.width + c) * nb + b] - bands[b][(w.y + r) * src.info.widthPx + w.x + c]),
            );
          }
      expect(interDiff, `${name}: the window read pixel-interleaved equals the whole read`).toBe(0);
      interleaved.add(name);
    }
    return stats;
  } finally {
    await src.close();
  }
}

describe('reading GeoTIFFs as GDAL writes them', () => {
  const fixturesDir = inject('fixturesDir');
  const dir = mkdtempSync(join(tmpdir(), 'tuban-gdal-'));
  const src = () => join(fixturesDir, 'imagery', '2024-03', 'r0c0.tif');
  const make = (name: string, args: string[], tool = 'gdal_translate') => {
    const out = join(dir, `${name}.tif`);
    execFileSync(tool, ['-q', ...args, src(), out]);
    return out;
  };
  beforeAll(() => {
    execFileSync('gdalinfo', ['--version']);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const cases: [string, string[], string?][] = [
    ['striped', ['-co', 'TILED=NO']],
    // strips of 7 rows: many strips are decoded at once, and the last one is short (1024 = 146 × 7 + 2)
    [
      'striped-deflate-pred2',
      ['-co', 'TILED=NO', '-co', 'BLOCKYSIZE=7', '-co', 'COMPRESS=DEFLATE', '-co', 'PREDICTOR=2'],
    ],
    ['striped-lzw-pred2', ['-co', 'TILED=NO', '-co', 'BLOCKYSIZE=7', '-co', 'COMPRESS=LZW', '-co', 'PREDICTOR=2']],
    ['tiled-lzw-pred2', ['-co', 'TILED=YES', '-co', 'COMPRESS=LZW', '-co', 'PREDICTOR=2']],
    ['tiled-deflate-pred2', ['-co', 'TILED=YES', '-co', 'COMPRESS=DEFLATE', '-co', 'PREDICTOR=2']],
    ['zstd', ['-co', 'TILED=YES', '-co', 'COMPRESS=ZSTD']],
    [
      'rgbn-8bit-deflate',
      ['-b', '1', '-b', '2', '-b', '3', '-b', '1', '-co', 'TILED=YES', '-co', 'COMPRESS=DEFLATE', '-co', 'PREDICTOR=2'],
    ],
    ['bigtiff', ['-co', 'BIGTIFF=YES', '-co', 'TILED=YES', '-co', 'COMPRESS=DEFLATE']],
    ['cog', ['-of', 'COG', '-co', 'COMPRESS=DEFLATE', '-co', 'BLOCKSIZE=256']],
    [
      'uint16-rgbn',
      [
        '-ot',
        'UInt16',
        '-scale',
        '0',
        '255',
        '0',
        '4095',
        '-b',
        '1',
        '-b',
        '2',
        '-b',
        '3',
        '-b',
        '1',
        '-co',
        'COMPRESS=DEFLATE',
        '-co',
        'PREDICTOR=2',
      ],
    ],
    // geotiff.js's path, through tuban's bounded decoders (pipeline/io/tiff.decoders.ts)
    ['packbits-striped', ['-co', 'TILED=NO', '-co', 'BLOCKYSIZE=9', '-co', 'COMPRESS=PACKBITS']],
    [
      'uint16-band-separate-lzw',
      [
        '-ot',
        'UInt16',
        '-scale',
        '0',
        '255',
        '0',
        '4095',
        '-co',
        'INTERLEAVE=BAND',
        '-co',
        'TILED=YES',
        '-co',
        'COMPRESS=LZW',
      ],
    ],
    [
      'uint16-striped-zstd-pred2',
      [
        '-ot',
        'UInt16',
        '-scale',
        '0',
        '255',
        '0',
        '4095',
        '-co',
        'BLOCKYSIZE=5',
        '-co',
        'COMPRESS=ZSTD',
        '-co',
        'PREDICTOR=2',
      ],
    ],
    ['pixel-is-point', ['-mo', 'AREA_OR_POINT=Point']],
    ['nodata', ['-a_nodata', '0']],
    // one and two bands (masks, panchromatic scenes, grey + alpha), 16-bit grey, MINISWHITE: compressed and not
    ['grey-tiled-deflate', ['-b', '1', '-co', 'TILED=YES', '-co', 'COMPRESS=DEFLATE']],
    ['grey-tiled-deflate-pred2', ['-b', '1', '-co', 'TILED=YES', '-co', 'COMPRESS=DEFLATE', '-co', 'PREDICTOR=2']],
    ['grey-tiled-lzw', ['-b', '1', '-co', 'TILED=YES', '-co', 'COMPRESS=LZW']],
    ['grey-striped-deflate', ['-b', '1', '-co', 'COMPRESS=DEFLATE']],
    ['grey-tiled', ['-b', '1', '-co', 'TILED=YES']],
    [
      'grey-alpha-tiled-deflate',
      [
        '-b',
        '1',
        '-b',
        '2',
        '-colorinterp',
        'gray,alpha',
        '-co',
        'ALPHA=YES',
        '-co',
        'TILED=YES',
        '-co',
        'COMPRESS=DEFLATE',
      ],
    ],
    ['grey-alpha-striped', ['-b', '1', '-b', '2', '-colorinterp', 'gray,alpha', '-co', 'ALPHA=YES']],
    [
      'grey-uint16-tiled-deflate',
      ['-b', '1', '-ot', 'UInt16', '-scale', '0', '255', '0', '4095', '-co', 'TILED=YES', '-co', 'COMPRESS=DEFLATE'],
    ],
    [
      'miniswhite-tiled-deflate',
      ['-b', '1', '-co', 'PHOTOMETRIC=MINISWHITE', '-co', 'TILED=YES', '-co', 'COMPRESS=DEFLATE'],
    ],
    ['miniswhite-striped', ['-b', '1', '-co', 'PHOTOMETRIC=MINISWHITE']],
  ];
  for (const [name, args] of cases) {
    it(`${name}: pixels and georeferencing equal GDAL's`, async () => {
      await compare(make(name, args), dir, name);
    });
  }
  for (const compress of ['DEFLATE', 'NONE']) {
    it(`palette (colour-mapped), ${compress}: the stored indices, as GDAL gives them`, async () => {
      // GDAL writes a palette TIFF from a VRT whose band has a colour table
      const vrt = join(dir, `palette-${compress}.vrt`);
      execFileSync('gdal_translate', ['-q', '-of', 'VRT', '-b', '1', src(), vrt]);
      const table = `<ColorTable>${Array.from({ length: 256 }, (_, i) => `<Entry c1="${i}" c2="${255 - i}" c3="${(i * 7) % 256}" c4="255"/>`).join('')}</ColorTable>`;
      writeFileSync(
        vrt,
        readFileSync(vrt, 'utf8').replace(
          /<ColorInterp>\w+<\/ColorInterp>/,
          `<ColorInterp>Palette</ColorInterp>${table}`,
        ),
      );
      const out = join(dir, `palette-${compress}.tif`);
      execFileSync('gdal_translate', ['-q', '-co', 'TILED=YES', '-co', `COMPRESS=${compress}`, vrt, out]);
      expect(execFileSync('gdalinfo', [out], { encoding: 'utf8' })).toMatch(/ColorInterp=Palette/);
      await compare(out, dir, `palette-${compress}`);
    });
  }

  it('reads the common 8-bit layouts pixel-interleaved as stored, equal to the band-by-band read', () => {
    // runs after the cases above (vitest keeps the order within a file)
    expect([...interleaved].sort()).toEqual(
      expect.arrayContaining([
        'bigtiff',
        'cog',
        'grey-alpha-tiled-deflate',
        'grey-striped-deflate',
        'grey-tiled-deflate',
        'miniswhite-tiled-deflate',
        'nodata',
        'rgbn-8bit-deflate',
        'striped',
        'striped-deflate-pred2',
        'striped-lzw-pred2',
        'tiled-deflate-pred2',
        'tiled-lzw-pred2',
      ]),
    );
  });

  it('JPEG (YCbCr) decodes to RGB close to GDAL (another JPEG decoder: chroma upsampling differs at sharp edges)', async () => {
    const d = await compare(
      make('jpeg-ycbcr', ['-co', 'TILED=YES', '-co', 'COMPRESS=JPEG', '-co', 'PHOTOMETRIC=YCBCR']),
      dir,
      'jpeg-ycbcr',
      1,
    );
    console.log(
      `JPEG YCbCr vs GDAL: mean |Δ| ${d.meanDiff.toFixed(3)}, ${(100 * d.within2).toFixed(2)} % within 2 levels, max ${d.maxDiff}`,
    );
    expect(d.meanDiff).toBeLessThan(1);
    expect(d.within2).toBeGreaterThan(0.95);
  });

  for (const epsg of [32650, 4490, 4326]) {
    it(`reprojected by gdalwarp to EPSG:${epsg}: CRS and corners as gdalinfo reports`, async () => {
      await compare(make(`warp-${epsg}`, ['-t_srs', `EPSG:${epsg}`, '-r', 'near'], 'gdalwarp'), dir, `warp-${epsg}`);
    });
  }

  it('reads the real sample imagery in ../shared/data exactly as GDAL does', async (ctx) => {
    const files = [
      'solaris-spacenet/sample_geotiff.tif',
      'solaris-spacenet/preproc_tutorial/pan1.tif',
      'opengeos-naip-timeseries',
    ].map((f) => join(SHARED, f));
    if (!existsSync(SHARED)) {
      ctx.skip('../shared/data is absent: skipping the real-imagery comparison');
      return;
    }
    const naipDir = files[2];
    const naip = existsSync(naipDir)
      ? execFileSync('ls', [naipDir], { encoding: 'utf8' })
          .split('\n')
          .filter((f) => f.endsWith('.tif'))
          .slice(0, 2)
          .map((f) => join(naipDir, f))
      : [];
    for (const f of [files[0], files[1], ...naip].filter(existsSync))
      await compare(f, dir, f.split('/').pop()!.replace('.tif', ''));
  });
});

describe("tuban's own GeoTIFF writer (previews, fixtures) as GDAL reads it", () => {
  const dir = mkdtempSync(join(tmpdir(), 'tuban-gdal-write-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const W = 37,
    H = 23;
  const cases = [
    {
      name: 'rgb8-utm-nodata',
      samples: Uint8Array.from({ length: W * H * 3 }, (_, i) => (i * 7) % 256),
      bands: 3,
      crs: crs(32650, false),
      gt: [611200.25, 0.5, 0, 2713600.75, 0, -0.5] as GeoTransform,
      nodata: 0,
      gdalType: '1',
    },
    {
      name: 'grey16',
      samples: Uint16Array.from({ length: W * H }, (_, i) => (i * 977) % 65536),
      bands: 1,
      crs: EPSG_4548,
      gt: [500000, 2, 0, 2700000, 0, -2] as GeoTransform,
      nodata: null,
      gdalType: '12',
    },
    {
      name: 'float-rotated-4326',
      samples: Float32Array.from({ length: W * H * 2 }, (_, i) => i / 3 - 100),
      bands: 2,
      crs: crs(4326, true),
      // rotated by 0.2 rad: x = x0 + a cos θ · col + a sin θ · row, y = y0 + a sin θ · col − a cos θ · row
      gt: [
        118.1,
        1e-4 * Math.cos(0.2),
        1e-4 * Math.sin(0.2),
        24.5,
        1e-4 * Math.sin(0.2),
        -1e-4 * Math.cos(0.2),
      ] as GeoTransform,
      nodata: -9999,
      gdalType: '4',
    },
  ];
  for (const c of cases)
    it(`${c.name}: size, bands, geotransform, EPSG, nodata and every sample as GDAL reads them`, () => {
      const file = join(dir, `${c.name}.tif`);
      writeGeoTiff(file, {
        widthPx: W,
        heightPx: H,
        samples: c.samples,
        bands: c.bands,
        crs: c.crs,
        geoTransform: c.gt,
        nodata: c.nodata,
      });
      const j = JSON.parse(execFileSync('gdalinfo', ['-json', file], { encoding: 'utf8' }));
      expect(j.size).toEqual([W, H]);
      expect(j.bands).toHaveLength(c.bands);
      c.gt.forEach((v, i) => expect(j.geoTransform[i], `geotransform[${i}]`).toBeCloseTo(v, 9));
      expect((j.coordinateSystem.wkt as string).replace(/\s+/g, '')).toMatch(
        new RegExp(`ID\\["EPSG",${c.crs.epsg}\\]\\]$`),
      );
      for (const b of j.bands) expect(b.noDataValue ?? null).toBe(c.nodata);
      const raw = gdalRaw(file, dir, c.name);
      expect(raw.type).toBe(c.gdalType);
      const n = W * H;
      const bytes = c.samples.BYTES_PER_ELEMENT;
      for (let b = 0; b < c.bands; b++)
        for (let i = 0; i < n; i++) {
          const o = (b * n + i) * bytes;
          const got = bytes === 1 ? raw.data[o] : bytes === 2 ? raw.data.readUInt16LE(o) : raw.data.readFloatLE(o);
          if (got !== c.samples[i * c.bands + b])
            expect(got, `${c.name} band ${b} pixel ${i}`).toBe(c.samples[i * c.bands + b]);
        }
    });
});
