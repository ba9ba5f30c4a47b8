/**
 * Benchmark: one large scene (default 40,000 × 40,000 px, 3 bands, 0.5 m, tiled DEFLATE GeoTIFF
 * written by GDAL) run detect → vectorize part by part, as the workers do, in this one process.
 * Prints the peak resident memory, time per stage, and checks the buildings planted across part
 * edges: their pieces must add up to the planted area and union into one polygon each.
 * Not a test: numbers depend on the machine.
 *
 *   npx tsx scripts/bench-scene.ts [--size 40000] [--part 3072] [--model models/cva-baseline] [--compress NONE|DEFLATE] [--concurrency 1] [--keep DIR]
 *
 * --concurrency N keeps N parts in flight, as a worker with TUBAN_CONCURRENCY=N does.
 *
 * With --keep DIR the scene files stay in DIR and a later run with the same size and part reuses them.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { featureCollection, union } from '@turf/turf';
import type { Feature, MultiPolygon, Polygon } from 'geojson';
import { detectRegion, releaseProbability } from '../pipeline/detect.tile.ts';
import { GeoTiffSource } from '../pipeline/io/geotiff.source.ts';
import { OnnxChangeModel } from '../pipeline/io/model.onnx.ts';
import { vectorizeRaster } from '../pipeline/vectorize.ts';
import { partGrid } from '../pipeline/window.grid.ts';
import { DEFAULT_PART_PX } from '../config/env.ts';
import { ringArea } from '../pipeline/regularise.ts';
import { mulberry32 } from './prng.ts';
import { StageTimer } from '../core/log.ts';

const argv = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = argv.indexOf(name);
  return i < 0 ? dflt : argv[i + 1];
};
const S = Number(opt('--size', '40000'));
const PART = Number(opt('--part', String(DEFAULT_PART_PX)));
const modelDir = opt('--model', 'models/cva-baseline');
/** Tile compression of the scene files (NONE reads fastest; DEFLATE is what deliveries often use). */
const COMPRESS = opt('--compress', 'NONE');
const keepDir = argv.includes('--keep') ? opt('--keep', '') : '';
const CONCURRENCY = Number(opt('--concurrency', '1'));
const GSD = 0.5,
  X0 = 500000,
  Y0 = 2740000;
const dir = keepDir || mkdtempSync(join(tmpdir(), 'tuban-bench-scene-'));
mkdirSync(dir, { recursive: true });

type Rect = { x0: number; y0: number; x1: number; y1: number; seam: boolean };
const world = (r: Rect) => [
  [X0 + r.x0 * GSD, Y0 - r.y0 * GSD],
  [X0 + r.x1 * GSD, Y0 - r.y0 * GSD],
  [X0 + r.x1 * GSD, Y0 - r.y1 * GSD],
  [X0 + r.x0 * GSD, Y0 - r.y1 * GSD],
  [X0 + r.x0 * GSD, Y0 - r.y0 * GSD],
];
// GeoJSON is lon/lat unless it says otherwise: name the scene's CRS so GDAL does not reproject.
const geojson = (rects: Rect[], colour: number[]) =>
  JSON.stringify({
    type: 'FeatureCollection',
    crs: { type: 'name', properties: { name: 'urn:ogc:def:crs:EPSG::4548' } },
    features: rects.map((r) => ({
      type: 'Feature',
      properties: { r: colour[0], g: colour[1], b: colour[2] },
      geometry: { type: 'Polygon', coordinates: [world(r)] },
    })),
  });

// New buildings: a few hundred at random, and one across every fourth part edge (vertical and horizontal).
const rnd = mulberry32(4040);
const planted: Rect[] = [];
for (let k = 0; k < Math.round((S * S) / 4e6); k++) {
  const w = 16 + Math.floor(rnd() * 40),
    h = 16 + Math.floor(rnd() * 40);
  const x0 = Math.floor(rnd() * (S - w)),
    y0 = Math.floor(rnd() * (S - h));
  planted.push({ x0, y0, x1: x0 + w, y1: y0 + h, seam: false });
}
for (let e = PART; e < S; e += PART * 4) {
  const along = Math.floor(S * 0.37) % (S - 100);
  planted.push({ x0: e - 17, y0: along, x1: e + 23, y1: along + 30, seam: true }); // across a vertical edge
  planted.push({ x0: along, y0: e - 11, x1: along + 36, y1: e + 19, seam: true }); // across a horizontal edge
}
const cornerEdge = PART * 2;
if (cornerEdge < S)
  planted.push({ x0: cornerEdge - 20, y0: cornerEdge - 20, x1: cornerEdge + 20, y1: cornerEdge + 20, seam: true }); // four parts meet

let t = performance.now();
const before = join(dir, 'before.tif'),
  after = join(dir, 'after.tif');
const stamp = join(dir, `scene-${S}-${PART}-${COMPRESS}.done`);
if (existsSync(stamp)) console.log(`reusing the ${S}² scene pair in ${dir}`);
else {
  console.log(`writing a ${S}² scene pair with GDAL in ${dir}`);
  execFileSync('gdal_create', [
    '-of',
    'GTiff',
    '-outsize',
    `${S}`,
    `${S}`,
    '-bands',
    '3',
    '-ot',
    'Byte',
    '-burn',
    '112',
    '-burn',
    '118',
    '-burn',
    '96',
    '-a_srs',
    'EPSG:4548',
    '-a_ullr',
    `${X0}`,
    `${Y0}`,
    `${X0 + S * GSD}`,
    `${Y0 - S * GSD}`,
    '-co',
    'TILED=YES',
    '-co',
    `COMPRESS=${COMPRESS}`,
    '-co',
    'BIGTIFF=YES',
    before,
  ]);
  execFileSync('gdal_translate', [
    '-q',
    '-co',
    'TILED=YES',
    '-co',
    `COMPRESS=${COMPRESS}`,
    '-co',
    'BIGTIFF=YES',
    before,
    after,
  ]);
  writeFileSync(join(dir, 'new.geojson'), geojson(planted, [205, 200, 196]));
  for (const [b, a] of [
    [1, 'r'],
    [2, 'g'],
    [3, 'b'],
  ] as const)
    execFileSync('gdal_rasterize', ['-q', '-b', `${b}`, '-a', a, join(dir, 'new.geojson'), after]);
  writeFileSync(stamp, '');
}
console.log(
  `  ${((performance.now() - t) / 1000).toFixed(1)} s; ${planted.length} new buildings, ${planted.filter((p) => p.seam).length} across part edges`,
);

const model = await OnnxChangeModel.load(modelDir, { intraOpThreads: 2 });
const a = await GeoTiffSource.open(after),
  b = await GeoTiffSource.open(before);
const parts = partGrid(S, S, PART);
const pieces: Feature<Polygon | MultiPolygon, { area_m2: number; pixel_count: number }>[] = [];
const ms: Record<string, number> = {};
let peakRss = 0;
t = performance.now();
let next = 0,
  done = 0;
const inFlight = async () => {
  for (let i = next++; i < parts.length; i = next++) {
    const p = parts[i];
    // a timer per part (several are in flight), summed into the scene's stages
    const timer = new StageTimer();
    const r = await detectRegion({ after: a, baselines: [{ source: b }], model, region: p, stages: timer });
    await timer.time('vectorize', () => {
      for (const f of vectorizeRaster(r.probability, p.width, p.height, a.info.geoTransform, {
        threshold: model.manifest.defaultThreshold,
        minAreaM2: 2,
        offsetPx: { x: p.x, y: p.y },
        interior: r.interior,
        interiorThreshold: model.manifest.interior?.threshold,
      }))
        pieces.push(f);
    });
    for (const [stage, v] of Object.entries(timer.ms)) ms[stage] = (ms[stage] ?? 0) + v;
    releaseProbability(r); // as the workers do: the next part reuses the planes
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    if (++done % 10 === 0 || done === parts.length)
      process.stdout.write(
        `\r  part ${done}/${parts.length}, rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MB`,
      );
  }
};
await Promise.all(Array.from({ length: CONCURRENCY }, inFlight));
const wall = (performance.now() - t) / 1000;
await a.close();
await b.close();
await model.close();
const maxRssMb = process.resourceUsage().maxRSS / 1024;

// Buildings across part edges: their pieces, one from each side, must union into one polygon of
// one ring whose area is the pieces' sum (no gap and no overlap along the edge).
const shoelace = (ring: number[][]) => Math.abs(ringArea(ring));
const areaOf = (g: Polygon | MultiPolygon) =>
  (g.type === 'Polygon' ? [g.coordinates] : g.coordinates).reduce(
    (a, poly) => a + shoelace(poly[0]) - poly.slice(1).reduce((h, r) => h + shoelace(r), 0),
    0,
  );
let seamOk = 0;
const seamBad: string[] = [];
for (const r of planted.filter((p) => p.seam)) {
  const [minX, maxY] = [X0 + (r.x0 - 8) * GSD, Y0 - (r.y0 - 8) * GSD];
  const [maxX, minY] = [X0 + (r.x1 + 8) * GSD, Y0 - (r.y1 + 8) * GSD];
  const mine = pieces.filter((f) => {
    const ring = f.geometry.type === 'Polygon' ? f.geometry.coordinates[0] : f.geometry.coordinates[0][0];
    return ring.every((c) => c[0] >= minX && c[0] <= maxX && c[1] >= minY && c[1] <= maxY);
  });
  const sum = mine.reduce((s, f) => s + areaOf(f.geometry), 0);
  const merged = mine.length > 1 ? union(featureCollection(mine as Feature<Polygon | MultiPolygon>[])) : mine[0];
  const g = merged?.geometry;
  const oneRing =
    !!g &&
    ((g.type === 'Polygon' && g.coordinates.length === 1) ||
      (g.type === 'MultiPolygon' && g.coordinates.length === 1 && g.coordinates[0].length === 1));
  const exact = !!g && Math.abs(areaOf(g) - sum) < 1e-6 * Math.max(1, sum);
  if (mine.length >= 2 && oneRing && exact) seamOk++;
  else
    seamBad.push(
      `${r.x0},${r.y0}: ${mine.length} pieces, union ${g ? (oneRing ? 'one ring' : g.type) : 'none'}, area ${g ? areaOf(g).toFixed(2) : 0} vs pieces ${sum.toFixed(2)} m²`,
    );
}
const mp = (S * S) / 1e6;
console.log(
  `\n\n${S}² px (${mp.toFixed(0)} MP, ${(mp * GSD * GSD).toFixed(0)} km²) in ${parts.length} parts of ≤ ${PART}², ${CONCURRENCY} in flight, model ${model.manifest.name}`,
);
console.log(
  `wall ${wall.toFixed(1)} s (${(mp / wall).toFixed(2)} MP/s); peak RSS ${maxRssMb.toFixed(0)} MB (sampled after each part: ${(peakRss / 2 ** 20).toFixed(0)} MB)`,
);
for (const k of ['read', 'infer', 'modelWait', 'blend', 'vectorize'])
  console.log(`  ${k.padEnd(10)} ${((ms[k] ?? 0) / 1000).toFixed(1).padStart(8)} s`);
console.log(
  `pieces ${pieces.length}; buildings across part edges whole again (one polygon, one ring, area = sum of the pieces): ${seamOk}/${seamOk + seamBad.length}${seamBad.length ? ` — not: ${seamBad.slice(0, 5).join('; ')}` : ''}`,
);
if (!keepDir) rmSync(dir, { recursive: true, force: true });
