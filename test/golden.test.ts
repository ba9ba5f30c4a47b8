import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, inject, it } from 'vitest';
import { renderChipPlan } from '../export/sheets.ts';
import { renderMapTilePng } from '../export/tile.ts';
import { GeoTiffSource } from '../pipeline/io/geotiff.source.ts';
import type { GeoTransform } from '../pipeline/geotransform.ts';
import { vectorizeRaster } from '../pipeline/vectorize.ts';
import { expectGoldenPng, expectGoldenText, GOLDEN } from './helpers/golden.ts';

const GT: GeoTransform = [611200, 0.5, 0, 2713600, 0, -0.5];

/** A mask drawn in text: '#' change, '@' change and building interior (a seed), anything else none; '#' lines first are comments. */
function readMask(file: string) {
  const rows = readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.length && !l.startsWith('# '));
  const h = rows.length,
    w = rows[0].length;
  const change = new Float32Array(w * h);
  const interior = new Float32Array(w * h);
  rows.forEach((r, y) =>
    r.split('').forEach((c, x) => {
      change[y * w + x] = c === '#' || c === '@' ? 1 : 0;
      interior[y * w + x] = c === '@' ? 1 : 0;
    }),
  );
  return { change, interior: rows.some((r) => r.includes('@')) ? interior : undefined, w, h };
}

const geojson = (features: unknown[]) => `${JSON.stringify({ type: 'FeatureCollection', features }, null, 1)}\n`;

/**
 * Outputs that must not change by accident: each input in test/golden/in gives the file of the same
 * name in test/golden/out. After an intended change, regenerate with
 * `UPDATE_GOLDEN=1 npx vitest run test/golden.test.ts` and review the diff.
 */
describe('golden outputs', () => {
  const masks = readdirSync(join(GOLDEN, 'in')).filter((f) => f.endsWith('.txt'));

  for (const file of masks) {
    it(`vectorizes ${file} as before`, () => {
      const m = readMask(join(GOLDEN, 'in', file));
      const exact = vectorizeRaster(m.change, m.w, m.h, GT, { minAreaM2: 1, interior: m.interior });
      expectGoldenText(file.replace(/\.txt$/, '.geojson'), geojson(exact));
      const simplified = vectorizeRaster(m.change, m.w, m.h, GT, {
        minAreaM2: 1,
        interior: m.interior,
        simplifyToleranceM: 0.5,
      });
      expectGoldenText(file.replace(/\.txt$/, '.simplified.geojson'), geojson(simplified));
    });
  }

  it('cuts the same chips from the fixture imagery, outline drawn', async () => {
    const fixturesDir = inject('fixturesDir');
    const truth = JSON.parse(readFileSync(join(fixturesDir, 'truth.geojson'), 'utf8')) as {
      features: { properties: { id: string }; geometry: { coordinates: number[][][] } }[];
    };
    const tiles = ['r0c0', 'r0c1', 'r1c0', 'r1c1'];
    const opened: GeoTiffSource[] = [];
    const open = async (path: string) => {
      const src = await GeoTiffSource.open(path);
      opened.push(src);
      return src;
    };
    // the building on the seam between tiles, and the first one: a mosaic and a single tile
    for (const f of [truth.features.find((t) => t.properties.id === 'seam')!, truth.features[0]]) {
      const ring = f.geometry.coordinates[0];
      const xs = ring.map((p) => p[0]),
        ys = ring.map((p) => p[1]);
      for (const month of ['2024-02', '2024-03']) {
        const png = await renderChipPlan(
          {
            tiles: tiles.map((t) => ({ path: join(fixturesDir, 'imagery', month, `${t}.tif`), stretch: null })),
            boundsWorld: [Math.min(...xs) - 15, Math.min(...ys) - 15, Math.max(...xs) + 15, Math.max(...ys) + 15],
            gsdM: 0.5,
            outline: [f.geometry.coordinates],
            colour: month === '2024-02' ? '#ffd400' : '#ff2020',
            widthPx: 200,
          },
          open,
        );
        await expectGoldenPng(`chip-${f.properties.id}-${month}.png`, png);
      }
    }
    await Promise.all(opened.map((s) => s.close()));
  });

  it('draws the same web-map tiles over the tile seam, whole and clipped to a town', async () => {
    const fixturesDir = inject('fixturesDir');
    const truth = JSON.parse(readFileSync(join(fixturesDir, 'truth.geojson'), 'utf8')) as {
      features: { properties: { id: string }; geometry: { coordinates: number[][][] } }[];
    };
    const ring = truth.features.find((t) => t.properties.id === 'seam')!.geometry.coordinates[0];
    const [cx, cy] = [
      (Math.min(...ring.map((p) => p[0])) + Math.max(...ring.map((p) => p[0]))) / 2,
      (Math.min(...ring.map((p) => p[1])) + Math.max(...ring.map((p) => p[1]))) / 2,
    ];
    const half = 64; // 256 px at 0.5 m
    const boundsWorld: [number, number, number, number] = [cx - half, cy - half, cx + half, cy + half];
    const sources = await Promise.all(
      ['r0c0', 'r0c1', 'r1c0', 'r1c1'].map((t) =>
        GeoTiffSource.open(join(fixturesDir, 'imagery', '2024-03', `${t}.tif`)),
      ),
    );
    const tiles = sources.map((source) => ({ source, stretch: null }));
    const diamond = {
      type: 'Polygon',
      coordinates: [
        [
          [cx, cy - 50],
          [cx + 50, cy],
          [cx, cy + 50],
          [cx - 50, cy],
          [cx, cy - 50],
        ],
      ],
    };
    await expectGoldenPng(
      'tile-seam.png',
      await renderMapTilePng({ tiles, boundsWorld, resM: 0.5, sizePx: 256, clip: null }),
    );
    await expectGoldenPng(
      'tile-seam-clipped.png',
      await renderMapTilePng({ tiles, boundsWorld, resM: 0.5, sizePx: 256, clip: diamond }),
    );
    await Promise.all(sources.map((s) => s.close()));
  });
});
