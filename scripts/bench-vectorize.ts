/**
 * Benchmark: tuban's vectorizer against gdal_polygonize.py (8-connectivity) on the same masks,
 * in one run, printing times, the ratio, and a check that both found the same polygons
 * (feature count and total area). Not a test: numbers depend on the machine.
 *
 *   npx tsx scripts/bench-vectorize.ts [--size 16384] [--dense-size 4096] [--keep DIR]
 *
 * Masks are written as ENVI raw files (GDAL reads them; nodata 0 keeps background out of
 * GDAL's output) in EPSG:4548 at 0.5 m. Each side's time covers reading the mask, vectorizing
 * and writing GeoJSON.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GeoTransform } from '../pipeline/geotransform.ts';
import { vectorizeRaster } from '../pipeline/vectorize.ts';
import { mulberry32 } from './prng.ts';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const SIZE = arg('--size', 16384);
const DENSE = arg('--dense-size', 4096);
const keep = process.argv.includes('--keep') ? process.argv[process.argv.indexOf('--keep') + 1] : null;

/** Building-change-like mask: rectangles and L-shapes of 8–80 px with some holes, ~3 % cover. */
function realisticMask(n: number): Uint8Array {
  const m = new Uint8Array(n * n);
  const rnd = mulberry32(42);
  const count = Math.round((n * n * 0.03) / 1200);
  for (let k = 0; k < count; k++) {
    const w = 8 + Math.floor(rnd() * 72),
      h = 8 + Math.floor(rnd() * 72);
    const x0 = Math.floor(rnd() * (n - w)),
      y0 = Math.floor(rnd() * (n - h));
    const notch = rnd() < 0.3;
    for (let y = y0; y < y0 + h; y++)
      for (let x = x0; x < x0 + w; x++) {
        if (notch && x > x0 + w / 2 && y > y0 + h / 2) continue;
        m[y * n + x] = 1;
      }
    if (rnd() < 0.1 && w > 20 && h > 20)
      for (let y = y0 + 6; y < y0 + 12; y++) for (let x = x0 + 6; x < x0 + 12; x++) m[y * n + x] = 0;
  }
  return m;
}

/** Worst case: independent random pixels at 40 % (many tiny, diagonal-touching components). */
function denseMask(n: number): Uint8Array {
  const rnd = mulberry32(7);
  return Uint8Array.from({ length: n * n }, () => (rnd() < 0.4 ? 1 : 0));
}

function writeEnvi(dir: string, name: string, mask: Uint8Array, n: number, gt: GeoTransform): string {
  const bin = join(dir, `${name}.bin`);
  writeFileSync(bin, mask);
  writeFileSync(
    join(dir, `${name}.hdr`),
    [
      'ENVI',
      `samples = ${n}`,
      `lines = ${n}`,
      'bands = 1',
      'header offset = 0',
      'file type = ENVI Standard',
      'data type = 1',
      'interleave = bsq',
      'byte order = 0',
      `map info = {Gauss-Kruger, 1, 1, ${gt[0]}, ${gt[3]}, ${gt[1]}, ${-gt[5]}}`,
      'coordinate system string = {}',
      'data ignore value = 0',
      '',
    ].join('\n'),
  );
  return bin;
}

async function ours(bin: string, n: number, gt: GeoTransform, out: string) {
  const t0 = performance.now();
  const mask = new Uint8Array(readFileSync(bin));
  const feats = vectorizeRaster(mask, n, n, gt);
  const ws = createWriteStream(out);
  ws.write('{"type":"FeatureCollection","features":[\n');
  feats.forEach((f, i) => ws.write((i ? ',\n' : '') + JSON.stringify(f)));
  ws.write('\n]}\n');
  await new Promise((r) => ws.end(r));
  const ms = performance.now() - t0;
  return { ms, count: feats.length, areaM2: feats.reduce((s, f) => s + f.properties.area_m2, 0) };
}

function gdal(bin: string, out: string) {
  const t0 = performance.now();
  execFileSync('gdal_polygonize.py', ['-q', '-8', bin, '-f', 'GeoJSON', out, 'out', 'value'], { stdio: 'pipe' });
  const ms = performance.now() - t0;
  const info = execFileSync(
    'ogrinfo',
    ['-q', '-sql', 'SELECT COUNT(*) AS n, SUM(ST_Area(geometry)) AS a FROM out', '-dialect', 'SQLite', out],
    { encoding: 'utf8' },
  );
  const n = Number(/n \(Integer\) = (\d+)/.exec(info)?.[1]);
  const a = Number(/a \(Real\) = ([\d.e+]+)/.exec(info)?.[1]);
  return { ms, count: n, areaM2: a };
}

async function main() {
  const dir = keep ?? mkdtempSync(join(tmpdir(), 'tuban-bench-'));
  const gt: GeoTransform = [611200, 0.5, 0, 2713600, 0, -0.5];
  console.log(`gdal: ${execFileSync('gdalinfo', ['--version'], { encoding: 'utf8' }).trim()}; node ${process.version}`);
  for (const [name, n, make] of [
    ['realistic', SIZE, realisticMask],
    ['dense', DENSE, denseMask],
  ] as const) {
    const mask = make(n);
    const fg = mask.reduce((s, v) => s + v, 0);
    const bin = writeEnvi(dir, name, mask, n, gt);
    const o = await ours(bin, n, gt, join(dir, `${name}.tuban.geojson`));
    const g = gdal(bin, join(dir, `${name}.gdal.geojson`));
    console.log(`${name} ${n}×${n} px, ${((100 * fg) / (n * n)).toFixed(1)} % foreground`);
    console.log(
      `  tuban  ${(o.ms / 1000).toFixed(2)} s  ${o.count} polygons  ${o.areaM2.toFixed(1)} m²  (${(statSync(join(dir, `${name}.tuban.geojson`)).size / 1e6).toFixed(0)} MB GeoJSON)`,
    );
    console.log(
      `  gdal   ${(g.ms / 1000).toFixed(2)} s  ${g.count} polygons  ${g.areaM2.toFixed(1)} m²  (${(statSync(join(dir, `${name}.gdal.geojson`)).size / 1e6).toFixed(0)} MB GeoJSON)`,
    );
    console.log(
      `  ratio tuban/gdal = ${(o.ms / g.ms).toFixed(2)}; same polygon count: ${o.count === g.count}; area difference ${Math.abs(o.areaM2 - g.areaM2).toFixed(3)} m²`,
    );
  }
  if (!keep) rmSync(dir, { recursive: true, force: true });
}

await main();
