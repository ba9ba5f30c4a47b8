// The real benchmark's ground truth: each warped label raster traced into building outlines and
// stored beside the batch's patches (bench_truth), for bench/real_scores to compare.
import type { Knex } from 'knex';
import type { GeoTransform } from '../pipeline/geotransform.ts';
import { GeoTiffSource } from '../pipeline/io/geotiff.source.ts';
import { vectorizeRaster } from '../pipeline/vectorize.ts';
import { runSql } from '../store/sql.ts';
import { UTM_14N, type RealPair } from './bench-real.plan.ts';

/** Label regions smaller than this are specks of the annotation, not buildings (8 pixels at 0.5 m). */
const TRUTH_MIN_AREA_M2 = 2;

/** Makes bench_truth: one row per ground-truth building (or the part of it that changed), with the image and its kind. */
export async function createTruthTable(db: Knex): Promise<void> {
  await db.raw(
    `create table bench_truth (id bigserial primary key, image text not null, kind text not null, geom geometry(MultiPolygon, ${UTM_14N.epsg}) not null)`,
  );
  await db.raw('create index bench_truth_geom_idx on bench_truth using gist (geom)');
}

/** Stores the outlines of a 0/1 (or 0/255) mask on a UTM grid as buildings of one kind; returns how many ST_MakeValid repaired. */
export async function storeTruthMask(
  db: Knex,
  image: string,
  kind: string,
  mask: Uint8Array,
  widthPx: number,
  heightPx: number,
  geoTransform: GeoTransform,
): Promise<number> {
  const buildings = vectorizeRaster(mask, widthPx, heightPx, geoTransform, { minAreaM2: TRUTH_MIN_AREA_M2 });
  const [row] = await runSql<{ inserted: number; repaired: number }>(db, 'bench/truth_insert', {
    image,
    kind,
    srid: UTM_14N.epsg,
    geometries: JSON.stringify(buildings.map((b) => b.geometry)),
  });
  return row.repaired;
}

/** Makes bench_truth and fills it from the pairs' labels; returns how many outlines ST_MakeValid repaired. */
export async function storeTruth(db: Knex, pairs: RealPair[]): Promise<number> {
  await createTruthTable(db);
  let repaired = 0;
  for (const p of pairs) {
    const src = await GeoTiffSource.open(p.tif.label);
    try {
      const { widthPx, heightPx, geoTransform, crs } = src.info;
      if (crs.epsg !== UTM_14N.epsg) throw new Error(`${p.tif.label}: EPSG:${crs.epsg}, expected EPSG:${UTM_14N.epsg}`);
      const [band] = await src.readWindow({ x: 0, y: 0, width: widthPx, height: heightPx }, [0]);
      // labels are 0 / 255; cut at 127 as tuban eval does
      const mask = Uint8Array.from(band, (v) => (v > 127 ? 1 : 0));
      repaired += await storeTruthMask(db, p.image, 'new', mask, widthPx, heightPx, geoTransform);
    } finally {
      await src.close();
    }
  }
  return repaired;
}
