/**
 * The pure half of scripts/bench-real.ts: where the real pairs are, the GDAL command lines that
 * turn each into GeoTIFFs in UTM, and the town layer that covers them. No process is run here.
 */
import { join } from 'node:path';
import { BadInputError } from '../core/errors.ts';
import { crs, type Crs } from '../core/crs.ts';

/** The LEVIR-CD pairs are in and around Austin, Texas: UTM zone 14N (102° W to 96° W). */
export const UTM_14N: Crs = crs(32614, false);
const ZONE_WEST_DEG = -102,
  ZONE_EAST_DEG = -96;

/** Months the pairs are registered as: LEVIR-CD's A images are from 2002, its B images from 2018. */
export const BASELINE_MONTH = '2002-01';
export const CURRENT_MONTH = '2018-01';

/** What the batch's patches are stored with: a town and its district (Travis County's FIPS code, six digits as tuban's codes are). */
export const TOWN = { code: '480001', name: 'Austin test town', districtCode: '480453' } as const;
/** The town reaches this far beyond the images (degrees, about 1 km), so no patch falls outside it. */
const TOWN_MARGIN_DEG = 0.01;

/** Web Mercator's sphere (EPSG:3857), in metres. */
const R = 6378137;
const mercY = (latDeg: number) => R * Math.log(Math.tan(Math.PI / 4 + (latDeg * Math.PI) / 360));
const latOf = (y: number) => ((2 * Math.atan(Math.exp(y / R)) - Math.PI / 2) * 180) / Math.PI;

/**
 * EPSG:4326 corners of one 1024² image. LEVIR_CD_name_coords.json lists [west, north, east, south]
 * with the same span in latitude as in longitude (360°/2¹⁶), which is not what Google Earth's
 * Web Mercator tiles cover: at 30° N that span is 609 m north–south against 528 m east–west, and
 * the images would be stretched 1.15× down. The images have square pixels in Web Mercator, so the
 * bench keeps west, north and east and puts the south edge where square pixels end (≈ 0.517 m on
 * the ground at Austin's latitude, warped to 0.5 m).
 */
export interface BoundsDeg {
  westDeg: number;
  northDeg: number;
  eastDeg: number;
  southDeg: number;
}

/** Where one pair's files are: the PNGs read, the GeoTIFFs written. */
export interface RealPair {
  /** File name in the dataset, e.g. `test_4.png`. */
  image: string;
  bounds: BoundsDeg;
  png: { before: string; after: string; label: string };
  tif: { before: string; after: string; label: string };
}

/** The dataset folders under the data root. */
export function dataLayout(dataDir: string): { pairsDir: string; coordsFile: string } {
  return {
    pairsDir: join(dataDir, 'change-pairs', 'levir-cd-t38'),
    coordsFile: join(dataDir, 'geotiff', 'levir-cd-geo', 'LEVIR_CD_name_coords.json'),
  };
}

/**
 * The pairs to run: each name's PNGs and corners, and where its GeoTIFFs go under `workDir`
 * (one folder per month, as `imagery register` takes them; labels apart). Throws BadInputError
 * naming the image when its corners are missing or it lies outside UTM zone 14N.
 */
export function planPairs(
  names: string[],
  coords: Record<string, unknown>,
  pairsDir: string,
  workDir: string,
): RealPair[] {
  if (names.length === 0)
    throw new BadInputError('no_images', 'no images chosen (--images or the split file named none)');
  return names.map((image) => {
    const c = coords[image];
    if (!Array.isArray(c) || c.length !== 4 || !c.every((v) => typeof v === 'number' && Number.isFinite(v))) {
      throw new BadInputError(
        'no_coords',
        `${image}: no [west, north, east, south] corners in LEVIR_CD_name_coords.json`,
        { image },
      );
    }
    const [westDeg, northDeg, eastDeg] = c as number[];
    const southDeg = latOf(mercY(northDeg) - ((eastDeg - westDeg) * Math.PI * R) / 180);
    if (westDeg < ZONE_WEST_DEG || eastDeg > ZONE_EAST_DEG) {
      throw new BadInputError(
        'outside_zone',
        `${image}: longitudes ${westDeg}..${eastDeg} are outside UTM zone 14N (${ZONE_WEST_DEG}..${ZONE_EAST_DEG}), the bench's EPSG:${UTM_14N.epsg}`,
        { image },
      );
    }
    const tif = image.replace(/\.[a-z]+$/i, '.tif');
    return {
      image,
      bounds: { westDeg, northDeg, eastDeg, southDeg },
      png: {
        before: join(pairsDir, 'A', image),
        after: join(pairsDir, 'B', image),
        label: join(pairsDir, 'label', image),
      },
      tif: {
        before: join(workDir, BASELINE_MONTH, tif),
        after: join(workDir, CURRENT_MONTH, tif),
        label: join(workDir, 'label', tif),
      },
    };
  });
}

/**
 * One scene of the batch: a pair on its own, or (with mosaicking) every pair whose LEVIR-CD tile
 * touches another's at an edge or a corner, warped together into one GeoTIFF per month. Labels
 * stay per pair, so each image is scored as it is on its own.
 */
export interface RealScene {
  name: string;
  pairs: RealPair[];
  tif: { before: string; after: string };
}

/** The span of a LEVIR-CD tile in longitude and in the corner file's latitude (360° / 2¹⁶). */
const TILE_SPAN_DEG = 360 / 2 ** 16;

/**
 * The scenes for `pairs`: one per pair, or with `mosaic` one per group of pairs whose tiles touch
 * (tile columns and rows on the corner file's grid, each at most one apart from another's), in the
 * order of each group's first pair. A mosaic's GeoTIFFs go in `workDir`'s month folders, named by
 * its images joined with "+".
 */
export function planScenes(pairs: RealPair[], mosaic: boolean, workDir: string): RealScene[] {
  const cell = (p: RealPair) => [
    Math.round(p.bounds.westDeg / TILE_SPAN_DEG),
    Math.round(p.bounds.northDeg / TILE_SPAN_DEG),
  ];
  const group = pairs.map((_, i) => i);
  const root = (i: number): number => (group[i] === i ? i : (group[i] = root(group[i])));
  if (mosaic)
    for (let i = 0; i < pairs.length; i++)
      for (let j = i + 1; j < pairs.length; j++) {
        const [ci, cj] = [cell(pairs[i]), cell(pairs[j])];
        if (Math.abs(ci[0] - cj[0]) <= 1 && Math.abs(ci[1] - cj[1]) <= 1) group[root(j)] = root(i);
      }
  const scenes = new Map<number, RealPair[]>();
  for (const [i, p] of pairs.entries()) scenes.set(root(i), [...(scenes.get(root(i)) ?? []), p]);
  return [...scenes.values()].map((members) => {
    if (members.length === 1) return { name: members[0].image, pairs: members, tif: members[0].tif };
    const name = members.map((p) => p.image.replace(/\.[a-z]+$/i, '')).join('+');
    return {
      name,
      pairs: members,
      tif: { before: join(workDir, BASELINE_MONTH, `${name}.tif`), after: join(workDir, CURRENT_MONTH, `${name}.tif`) },
    };
  });
}

export interface GdalCommand {
  program: 'gdal_translate' | 'gdalwarp';
  args: string[];
}

/** A VRT that gives the PNG its Web Mercator corners (EPSG:3857, square pixels; no pixel copy). */
function placeCommand(png: string, vrt: string, bounds: BoundsDeg): GdalCommand {
  const { westDeg, northDeg, eastDeg, southDeg } = bounds;
  return {
    program: 'gdal_translate',
    args: [
      '-q',
      '-of',
      'VRT',
      '-a_srs',
      'EPSG:3857',
      '-a_ullr',
      `${(westDeg * Math.PI * R) / 180}`,
      `${mercY(northDeg)}`,
      `${(eastDeg * Math.PI * R) / 180}`,
      `${mercY(southDeg)}`,
      png,
      vrt,
    ],
  };
}

/**
 * A warp of placed rasters to UTM 14N at exactly 0.5 m on the 0.5 m grid (-tap), tiled DEFLATE. Imagery is bilinear
 * and marks the fill outside the warped images as nodata 0, so tuban leaves that corner band (and a
 * mosaic's holes) out; labels are nearest (0/255 stay 0/255) and the fill is simply "no building".
 */
function warpCommand(vrts: string[], tif: string, kind: 'image' | 'label'): GdalCommand {
  return {
    program: 'gdalwarp',
    args: [
      '-q',
      '-overwrite',
      '-t_srs',
      `EPSG:${UTM_14N.epsg}`,
      '-tr',
      '0.5',
      '0.5',
      '-tap',
      '-r',
      kind === 'image' ? 'bilinear' : 'near',
      ...(kind === 'image' ? ['-dstnodata', '0'] : []),
      '-co',
      'TILED=YES',
      '-co',
      'COMPRESS=DEFLATE',
      ...vrts,
      tif,
    ],
  };
}

/** Every command for the scenes: each pair's PNGs placed, each scene's months and each pair's label warped. */
export function sceneCommands(scenes: RealScene[]): GdalCommand[] {
  return scenes.flatMap((scene) => {
    const vrt = (p: RealPair, month: 'before' | 'after') => `${p.tif[month]}.vrt`;
    return [
      ...scene.pairs.flatMap((p) => [
        placeCommand(p.png.before, vrt(p, 'before'), p.bounds),
        placeCommand(p.png.after, vrt(p, 'after'), p.bounds),
        placeCommand(p.png.label, `${p.tif.label}.vrt`, p.bounds),
        warpCommand([`${p.tif.label}.vrt`], p.tif.label, 'label'),
      ]),
      warpCommand(
        scene.pairs.map((p) => vrt(p, 'before')),
        scene.tif.before,
        'image',
      ),
      warpCommand(
        scene.pairs.map((p) => vrt(p, 'after')),
        scene.tif.after,
        'image',
      ),
    ];
  });
}

/** A town layer (GeoJSON, EPSG:4326): one rectangle over every pair's bounds plus a margin. */
export function townLayer(pairs: RealPair[]): object {
  const w = Math.min(...pairs.map((p) => p.bounds.westDeg)) - TOWN_MARGIN_DEG;
  const e = Math.max(...pairs.map((p) => p.bounds.eastDeg)) + TOWN_MARGIN_DEG;
  const s = Math.min(...pairs.map((p) => p.bounds.southDeg)) - TOWN_MARGIN_DEG;
  const n = Math.max(...pairs.map((p) => p.bounds.northDeg)) + TOWN_MARGIN_DEG;
  return {
    type: 'FeatureCollection',
    features: [
      {
        type: 'Feature',
        properties: { code: TOWN.code, name: TOWN.name, district_code: TOWN.districtCode },
        geometry: {
          type: 'Polygon',
          coordinates: [
            [
              [w, s],
              [e, s],
              [e, n],
              [w, n],
              [w, s],
            ],
          ],
        },
      },
    ],
  };
}

/** The footprints parameter of sql/bench/real_scores.sql. */
export function footprintsParam(pairs: RealPair[]): string {
  return JSON.stringify(
    pairs.map((p) => ({
      image: p.image,
      bounds: [p.bounds.westDeg, p.bounds.northDeg, p.bounds.eastDeg, p.bounds.southDeg],
    })),
  );
}
