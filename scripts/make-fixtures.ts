/**
 * Writes the demo/test fixtures: two months (2024-02 baseline, 2024-03 current) of synthetic
 * 0.5 m RGB imagery over Huli district, Xiamen, in CGCS2000 / 3-degree GK CM 117E (EPSG:4548),
 * as 2 × 2 GeoTIFF tiles of 1024 px each, plus the reference layers and the ground truth.
 * Deterministic: the same seed always gives byte-identical files. See fixtures/README.md.
 *
 * Run: npm run fixtures [-- OUT_DIR]   (default fixtures/xiamen-demo)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EPSG_4548 } from '../core/crs.ts';
import { encodeGeoTiff } from '../pipeline/io/geotiff.write.ts';
import { mulberry32 } from './prng.ts';

export const FIXTURE = {
  srid: 4548,
  gsdM: 0.5,
  originX: 611200,
  originY: 2713600,
  tilePx: 1024,
  tilesX: 2,
  tilesY: 2,
  baselineMonth: '2024-02',
  currentMonth: '2024-03',
  /** Acquisition date of the current month's imagery (permits are checked against it). */
  currentDate: '2024-03-15',
  districtCode: '350206',
} as const;

type Rgb = [number, number, number];
interface Rect {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}
interface Building extends Rect {
  roof: Rgb;
  id: string;
}

const SCENE = FIXTURE.tilePx * FIXTURE.tilesX;
const PAD = 4;

const FARMLAND: Rect = { x0: 1200, y0: 1180, x1: 1920, y1: 1900 };
const FOREST: Rect = { x0: 90, y0: 1260, x1: 520, y1: 1920 };
const POND = { cx: 1680, cy: 420, rx: 140, ry: 90 };
const ROADS: Rect[] = [
  { x0: 0, y0: 990, x1: SCENE, y1: 1018 },
  { x0: 600, y0: 0, x1: 626, y1: SCENE },
];
const PERMIT_VALID: Rect = { x0: 226, y0: 176, x1: 386, y1: 276 };
const PERMIT_EXPIRED: Rect = { x0: 1290, y0: 290, x1: 1352, y1: 352 };

/** New construction in the current month, with the verdict the batch must reach. */
export const NEW_BUILDINGS: (Building & {
  expect: 'patch' | 'permitted';
  note: string;
  town: string;
  flags: string[];
})[] = [
  {
    id: 'permitted-1',
    x0: 244,
    y0: 196,
    x1: 288,
    y1: 240,
    roof: [196, 198, 204],
    expect: 'permitted',
    note: 'inside a valid permit',
    town: '350206001',
    flags: [],
  },
  {
    id: 'permitted-2',
    x0: 318,
    y0: 206,
    x1: 366,
    y1: 256,
    roof: [178, 92, 70],
    expect: 'permitted',
    note: 'inside a valid permit',
    town: '350206001',
    flags: [],
  },
  {
    id: 'farmland',
    x0: 1500,
    y0: 1500,
    x1: 1544,
    y1: 1538,
    roof: [70, 112, 176],
    expect: 'patch',
    note: 'on farmland, no permit',
    town: '350206002',
    flags: ['farmland'],
  },
  {
    id: 'residential',
    x0: 880,
    y0: 540,
    x1: 930,
    y1: 588,
    roof: [214, 214, 220],
    expect: 'patch',
    note: 'in a residential block, no permit',
    town: '350206001',
    flags: [],
  },
  {
    id: 'seam',
    x0: 996,
    y0: 1520,
    x1: 1056,
    y1: 1562,
    roof: [190, 96, 60],
    expect: 'patch',
    note: 'straddles the tile seam at x = 1024 px',
    town: '350206001',
    flags: [],
  },
  {
    id: 'ecological',
    x0: 300,
    y0: 1500,
    x1: 338,
    y1: 1532,
    roof: [205, 205, 210],
    expect: 'patch',
    note: 'in the ecological protection zone',
    town: '350206001',
    flags: ['ecological'],
  },
  {
    id: 'expired-permit',
    x0: 1300,
    y0: 300,
    x1: 1342,
    y1: 342,
    roof: [80, 120, 185],
    expect: 'patch',
    note: 'permit expired before the imagery date',
    town: '350206002',
    flags: [],
  },
];

function existingBuildings(rnd: () => number): Building[] {
  const out: Building[] = [];
  const blocks: Rect[] = [
    { x0: 660, y0: 80, x1: 1160, y1: 940 },
    { x0: 1100, y0: 1060, x1: 1180, y1: 1900 },
    { x0: 60, y0: 80, x1: 560, y1: 900 },
    { x0: 660, y0: 1060, x1: 980, y1: 1900 },
  ];
  const palette: Rgb[] = [
    [192, 190, 186],
    [170, 84, 64],
    [88, 124, 170],
    [210, 208, 200],
    [150, 150, 155],
  ];
  const keepOut = [...NEW_BUILDINGS, PERMIT_VALID, PERMIT_EXPIRED, FARMLAND, FOREST].map((r) => ({
    x0: r.x0 - 14,
    y0: r.y0 - 14,
    x1: r.x1 + 14,
    y1: r.y1 + 14,
  }));
  let n = 0;
  for (const b of blocks) {
    for (let y = b.y0; y + 30 < b.y1; y += 70) {
      for (let x = b.x0; x + 30 < b.x1; x += 72) {
        if (rnd() < 0.25) continue;
        const w = 26 + Math.floor(rnd() * 22);
        const h = 24 + Math.floor(rnd() * 20);
        const r = { x0: x, y0: y, x1: x + w, y1: y + h };
        if (keepOut.some((k) => overlaps(k, r)) || ROADS.some((k) => overlaps(k, r))) continue;
        out.push({ ...r, roof: palette[Math.floor(rnd() * palette.length)], id: `b${n++}` });
      }
    }
  }
  return out;
}

function overlaps(a: Rect, b: Rect): boolean {
  return a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;
}

/** Renders the scene (without sensor noise) on a padded canvas; the current month adds the new buildings. */
function renderScene(buildings: Building[], month: 'baseline' | 'current'): Float32Array {
  const size = SCENE + 2 * PAD;
  const img = new Float32Array(size * size * 3);
  const set = (x: number, y: number, c: Rgb, k = 1) => {
    const i = (y * size + x) * 3;
    img[i] = c[0] * k;
    img[i + 1] = c[1] * k;
    img[i + 2] = c[2] * k;
  };
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const sx = x - PAD,
        sy = y - PAD;
      const lf = 1 + 0.06 * Math.sin(sx / 97) * Math.cos(sy / 131) + 0.04 * Math.sin((sx + sy) / 53);
      let c: Rgb = [152 * lf, 142 * lf, 122 * lf];
      if (inside(FARMLAND, sx, sy)) {
        const row = Math.floor((sy - FARMLAND.y0) / 6) % 2;
        const growth = month === 'current' ? 8 : 0;
        c = row ? [86, 136 + growth, 62] : [104, 128 + growth, 70];
      } else if (inside(FOREST, sx, sy)) {
        const t = 0.85 + 0.15 * Math.sin(sx / 5.3) * Math.sin(sy / 4.1);
        c = [46 * t, 86 * t, 50 * t];
      } else if (((sx - POND.cx) / POND.rx) ** 2 + ((sy - POND.cy) / POND.ry) ** 2 <= 1) {
        c = [38, 62, 88];
      } else if (ROADS.some((r) => inside(r, sx, sy))) {
        c = [112, 112, 116];
      }
      set(x, y, c);
    }
  }
  const all = month === 'current' ? [...buildings, ...NEW_BUILDINGS] : buildings;
  for (const b of all) {
    // Shadow 4 px to the south-east, then the roof, with a lighter ridge line.
    for (let y = b.y0 + 4; y < b.y1 + 4; y++)
      for (let x = b.x0 + 4; x < b.x1 + 4; x++) {
        const i = ((y + PAD) * size + x + PAD) * 3;
        img[i] *= 0.55;
        img[i + 1] *= 0.55;
        img[i + 2] *= 0.6;
      }
    const ridge = Math.floor((b.y0 + b.y1) / 2);
    for (let y = b.y0; y < b.y1; y++)
      for (let x = b.x0; x < b.x1; x++) set(x + PAD, y + PAD, b.roof, y === ridge ? 1.08 : 1);
  }
  return img;
}

function inside(r: Rect, x: number, y: number): boolean {
  return x >= r.x0 && x < r.x1 && y >= r.y0 && y < r.y1;
}

/** Crop the padded scene at an offset (misregistration), apply gain/offset, add noise and a few vehicles. */
function acquire(
  scene: Float32Array,
  shiftPx: [number, number],
  gain: number,
  offset: number,
  seed: number,
): Uint8Array {
  const size = SCENE + 2 * PAD;
  const rnd = mulberry32(seed);
  const out = new Uint8Array(SCENE * SCENE * 3);
  for (let y = 0; y < SCENE; y++) {
    for (let x = 0; x < SCENE; x++) {
      const si = ((y + PAD - shiftPx[1]) * size + (x + PAD - shiftPx[0])) * 3;
      const oi = (y * SCENE + x) * 3;
      const noise = (rnd() + rnd() + rnd() - 1.5) * 8;
      for (let c = 0; c < 3; c++) out[oi + c] = clamp(scene[si + c] * gain + offset + noise);
    }
  }
  // Vehicles on the roads: a few 4 × 2 px blobs, different in each month (must not become patches).
  for (let k = 0; k < 14; k++) {
    const road = ROADS[k % 2];
    const x = road.x0 + Math.floor(rnd() * (road.x1 - road.x0 - 6));
    const y = road.y0 + Math.floor(rnd() * (road.y1 - road.y0 - 4));
    const col: Rgb = [rnd() * 255, rnd() * 255, rnd() * 255];
    for (let dy = 0; dy < 2; dy++)
      for (let dx = 0; dx < 4; dx++)
        for (let c = 0; c < 3; c++) out[((y + dy) * SCENE + x + dx) * 3 + c] = clamp(col[c]);
  }
  return out;
}

function clamp(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
}

const toWorld = (x: number, y: number): [number, number] => [
  FIXTURE.originX + x * FIXTURE.gsdM,
  FIXTURE.originY - y * FIXTURE.gsdM,
];

function rectPolygon(r: Rect): number[][][] {
  return [[toWorld(r.x0, r.y1), toWorld(r.x1, r.y1), toWorld(r.x1, r.y0), toWorld(r.x0, r.y0), toWorld(r.x0, r.y1)]];
}

function ellipsePolygon(cx: number, cy: number, rx: number, ry: number): number[][][] {
  const ring: [number, number][] = [];
  for (let i = 0; i <= 48; i++) {
    const a = (-2 * Math.PI * i) / 48;
    ring.push(toWorld(cx + rx * Math.cos(a), cy + ry * Math.sin(a)));
  }
  ring[48] = ring[0];
  return [ring];
}

function featureCollection(features: { props: Record<string, unknown>; coords: number[][][] }[]) {
  return {
    type: 'FeatureCollection',
    crs: { type: 'name', properties: { name: `urn:ogc:def:crs:EPSG::${FIXTURE.srid}` } },
    features: features.map((f) => ({
      type: 'Feature',
      properties: f.props,
      geometry: { type: 'Polygon', coordinates: f.coords },
    })),
  };
}

export interface FixturePaths {
  dir: string;
  imagery: { baseline: string; current: string };
  layers: Record<'town' | 'grid' | 'permit' | 'building' | 'farmland' | 'ecological' | 'water', string>;
  truth: string;
}

export function makeFixtures(outDir: string): FixturePaths {
  const dir = resolve(outDir);
  const rnd = mulberry32(20240301);
  const buildings = existingBuildings(rnd);
  const months = [
    { month: FIXTURE.baselineMonth, img: acquire(renderScene(buildings, 'baseline'), [0, 0], 1, 0, 11) },
    // Current month: 1 px east / 1 px south misregistration, 6 % brighter and +6 offset.
    { month: FIXTURE.currentMonth, img: acquire(renderScene(buildings, 'current'), [1, 1], 1.06, 6, 23) },
  ];
  for (const { month, img } of months) {
    const mdir = join(dir, 'imagery', month);
    mkdirSync(mdir, { recursive: true });
    for (let ty = 0; ty < FIXTURE.tilesY; ty++) {
      for (let tx = 0; tx < FIXTURE.tilesX; tx++) {
        const T = FIXTURE.tilePx;
        const tile = new Uint8Array(T * T * 3);
        for (let y = 0; y < T; y++)
          tile.set(
            img.subarray(((ty * T + y) * SCENE + tx * T) * 3, ((ty * T + y) * SCENE + tx * T + T) * 3),
            y * T * 3,
          );
        const [ox, oy] = toWorld(tx * T, ty * T);
        const bytes = encodeGeoTiff({
          widthPx: T,
          heightPx: T,
          samples: tile,
          bands: 3,
          crs: EPSG_4548,
          geoTransform: [ox, FIXTURE.gsdM, 0, oy, 0, -FIXTURE.gsdM],
        });
        writeFileSync(join(mdir, `r${ty}c${tx}.tif`), Buffer.from(bytes));
      }
    }
  }
  const ldir = join(dir, 'layers');
  mkdirSync(ldir, { recursive: true });
  const M = 200; // towns and grids reach beyond the imagery
  const townWest = [
    [
      toWorld(-M, -M),
      toWorld(1100, -M),
      toWorld(1100, 1100),
      toWorld(1180, 1100),
      toWorld(1180, SCENE + M),
      toWorld(-M, SCENE + M),
      toWorld(-M, -M),
    ],
  ];
  const townEast = [
    [
      toWorld(1100, -M),
      toWorld(SCENE + M, -M),
      toWorld(SCENE + M, SCENE + M),
      toWorld(1180, SCENE + M),
      toWorld(1180, 1100),
      toWorld(1100, 1100),
      toWorld(1100, -M),
    ],
  ];
  const towns = [
    {
      props: { code: '350206001', name: '殿前街道', district_code: FIXTURE.districtCode, district_name: '湖里区' },
      coords: townWest.map((r) => r.reverse()),
    },
    {
      props: { code: '350206002', name: '禾山街道', district_code: FIXTURE.districtCode, district_name: '湖里区' },
      coords: townEast.map((r) => r.reverse()),
    },
  ];
  const grids = [
    {
      props: { code: '350206001-01', name: '殿前第一网格' },
      coords: rectPolygon({ x0: -M, y0: -M, x1: 1100, y1: 1010 }),
    },
    {
      props: { code: '350206001-02', name: '殿前第二网格' },
      coords: [
        [
          toWorld(-M, 1010),
          toWorld(-M, SCENE + M),
          toWorld(1180, SCENE + M),
          toWorld(1180, 1100),
          toWorld(1100, 1100),
          toWorld(1100, 1010),
          toWorld(-M, 1010),
        ],
      ],
    },
    {
      props: { code: '350206002-01', name: '禾山第一网格' },
      coords: rectPolygon({ x0: 1100, y0: -M, x1: SCENE + M, y1: 1100 }),
    },
    {
      props: { code: '350206002-02', name: '禾山第二网格' },
      coords: rectPolygon({ x0: 1180, y0: 1100, x1: SCENE + M, y1: SCENE + M }),
    },
  ];
  const layers = {
    town: featureCollection(towns),
    grid: featureCollection(grids),
    permit: featureCollection([
      {
        props: {
          code: '厦湖建许2024-0012',
          valid_from: '2024-01-10',
          valid_to: '2025-12-31',
          holder: '湖里区殿前社区',
        },
        coords: rectPolygon(PERMIT_VALID),
      },
      {
        props: { code: '厦湖建许2021-0301', valid_from: '2021-05-01', valid_to: '2023-12-31', holder: '禾山某公司' },
        coords: rectPolygon(PERMIT_EXPIRED),
      },
    ]),
    building: featureCollection(buildings.map((b) => ({ props: { code: b.id }, coords: rectPolygon(b) }))),
    farmland: featureCollection([{ props: { code: 'JBNT-0001', name: '基本农田' }, coords: rectPolygon(FARMLAND) }]),
    ecological: featureCollection([
      { props: { code: 'STHX-0001', name: '生态保护红线' }, coords: rectPolygon(FOREST) },
    ]),
    water: featureCollection([
      { props: { code: 'SY-0001', name: '水域' }, coords: ellipsePolygon(POND.cx, POND.cy, POND.rx, POND.ry) },
    ]),
  };
  const layerPaths = {} as FixturePaths['layers'];
  for (const [kind, fc] of Object.entries(layers)) {
    const p = join(ldir, `${kind}.geojson`);
    writeFileSync(p, JSON.stringify(fc, null, 1));
    layerPaths[kind as keyof typeof layers] = p;
  }
  const truth = featureCollection(
    NEW_BUILDINGS.map((b) => ({
      props: {
        id: b.id,
        expect: b.expect,
        note: b.note,
        town: b.town,
        flags: b.flags,
        area_m2: (b.x1 - b.x0) * (b.y1 - b.y0) * FIXTURE.gsdM ** 2,
      },
      coords: rectPolygon(b),
    })),
  );
  const truthPath = join(dir, 'truth.geojson');
  writeFileSync(truthPath, JSON.stringify(truth, null, 1));
  return {
    dir,
    imagery: {
      baseline: join(dir, 'imagery', FIXTURE.baselineMonth),
      current: join(dir, 'imagery', FIXTURE.currentMonth),
    },
    layers: layerPaths,
    truth: truthPath,
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const out = process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'xiamen-demo');
  const t0 = Date.now();
  const p = makeFixtures(out);
  console.log(`fixtures written to ${p.dir} in ${Date.now() - t0} ms`);
}
