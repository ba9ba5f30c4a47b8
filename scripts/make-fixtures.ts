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
import { writeGeoTiff } from '../pipeline/io/geotiff.write.ts';
import { featureCollection, rectPolygon, referenceLayers, toWorld } from './fixtures/layers.ts';
import { acquire, existingBuildings, FIXTURE, NEW_BUILDINGS, renderScene, SCENE } from './fixtures/scene.ts';
import { mulberry32 } from './prng.ts';

export { FIXTURE, NEW_BUILDINGS };

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
        writeGeoTiff(join(mdir, `r${ty}c${tx}.tif`), {
          widthPx: T,
          heightPx: T,
          samples: tile,
          bands: 3,
          crs: EPSG_4548,
          geoTransform: [ox, FIXTURE.gsdM, 0, oy, 0, -FIXTURE.gsdM],
        });
      }
    }
  }
  const ldir = join(dir, 'layers');
  mkdirSync(ldir, { recursive: true });
  const layers = referenceLayers(buildings);
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
