import { say } from '../i18n/say.ts';
import type { Db } from '../store/db.ts';
import { renderMapTilePng } from '../export/tile.ts';
import { BadInputError } from '../core/errors.ts';
import type { GeoTiffCache } from '../pipeline/io/geotiff.source.ts';
import type { BandStretch } from '../pipeline/raster.normalise.ts';
import { runSql } from '../store/sql.ts';
import { scopeTown } from '../store/patch.row.ts';
import type { User } from '../store/users.ts';
import type { MapConfigBody, TownsBody } from '../api/responses.ts';

/**
 * The web map's tile grid, in the storage CRS: a fixed top-left origin (any projected CRS of the
 * northern hemisphere has x > 0 and y < 10,000 km there), 256-pixel tiles, resolutions in metres.
 * Imagery is drawn from MAX_IMAGERY_RES down; coarser tiles come from each image's low-resolution
 * preview (pipeline/io/preview.ts), as full-resolution reads would be too many pixels per tile.
 */
export const TILE_GRID = {
  origin: [0, 10_000_000] as [number, number],
  tileSizePx: 256,
  resolutions: [16, 8, 4, 2, 1, 0.5, 0.25] as readonly number[],
};
const MAX_IMAGERY_RES = 2;

/** The web map's configuration: the CRS, the tile grid and the months with imagery (api/responses.ts). */
export type MapConfig = MapConfigBody;

export async function mapConfig(db: Db, srid: number): Promise<MapConfig> {
  const [proj] = await runSql<{ proj4text: string }>(db, 'map/proj4', { srid });
  if (!proj) throw new BadInputError('unknown_crs', say('storage_srid_unknown', { srid }));
  const months = await runSql<{
    month: string;
    baseline_month: string | null;
    min_x: number;
    min_y: number;
    max_x: number;
    max_y: number;
    gsd_m: number;
    tiles: number;
  }>(db, 'map/config', {});
  const registered = months.map((m) => m.month);
  return {
    srid,
    proj4: proj.proj4text.trim(),
    tileGrid: TILE_GRID,
    // every zoom level of the grid has imagery: the coarse ones from the previews
    maxImageryResolution: Math.max(...TILE_GRID.resolutions),
    months: months.map((m, i) => ({
      month: m.month,
      // the batch's baseline, else the previous registered month
      baselineMonth: m.baseline_month ?? (i > 0 ? registered[i - 1] : null),
      extent: [m.min_x, m.min_y, m.max_x, m.max_y],
      gsdM: m.gsd_m,
      tiles: m.tiles,
    })),
  };
}

/**
 * The town boundaries as GeoJSON text in the storage CRS (every town: boundaries are public), simplified to
 * the resolution of zoom level `z` of the tile grid (half a metre without one): a city's boundaries
 * hold hundreds of thousands of vertices, more than a phone's overview can draw or a slow line send. The
 * outlines go out as the database wrote them, not parsed and written again (5 MB at 300 towns).
 */
export async function townBoundaries(db: Db, z?: number): Promise<string> {
  const toleranceM = Math.max(0.5, z === undefined ? 0 : (TILE_GRID.resolutions[z] ?? 0));
  const rows = await runSql<{ code: string; name: string; geom: string }>(db, 'map/towns', {
    tolerance_m: toleranceM,
    // a decimetre where the tolerance is under a metre, whole metres above
    digits: toleranceM < 1 ? 1 : 0,
  });
  const features = rows.map(
    (r) =>
      `{"type":"Feature","id":${JSON.stringify(r.code)},"geometry":${r.geom},"properties":${JSON.stringify({ code: r.code, name: r.name } satisfies TownsBody['features'][number]['properties'])}}`,
  );
  return `{"type":"FeatureCollection","features":[${features.join(',')}]}`;
}

/** How far beyond their town a town user sees imagery (m): enough for context at a boundary. */
const TOWN_IMAGERY_MARGIN_M = 200;

/**
 * One 256² PNG map tile of a month's imagery (transparent where no imagery is), or null when the
 * zoom level is coarser than imagery is drawn at or no tile of the month covers it.
 */
export async function renderMapTile(
  db: Db,
  cache: GeoTiffCache,
  srid: number,
  month: string,
  z: number,
  x: number,
  y: number,
  user?: User,
): Promise<Buffer | null> {
  const resM = TILE_GRID.resolutions[z];
  if (resM === undefined || !Number.isInteger(x) || !Number.isInteger(y) || x < 0 || y < 0)
    throw new BadInputError(
      'bad_request',
      say('map_tile_invalid', { z, x, y, max_z: TILE_GRID.resolutions.length - 1 }),
    );
  // coarser than full-resolution imagery is drawn at: from the previews made at registration
  const preview = resM > MAX_IMAGERY_RES;
  const sizeM = TILE_GRID.tileSizePx * resM;
  const minX = TILE_GRID.origin[0] + x * sizeM;
  const maxY = TILE_GRID.origin[1] - y * sizeM;
  const bounds: [number, number, number, number] = [minX, maxY - sizeM, minX + sizeM, maxY];
  // a town user sees their town and a margin around it; elsewhere there is no tile, and a tile on the edge is masked
  const rows = await runSql<{
    path: string;
    stretch: BandStretch | null;
    clip: { type: string; coordinates: unknown } | null;
  }>(db, 'map/tile_imagery', {
    month,
    srid,
    min_x: bounds[0],
    min_y: bounds[1],
    max_x: bounds[2],
    max_y: bounds[3],
    scope_town: user ? scopeTown(user) : null,
    margin_m: TOWN_IMAGERY_MARGIN_M,
    preview,
  });
  if (!rows.length) return null;
  const tiles = [];
  for (const r of rows) tiles.push({ source: await cache.open(r.path), stretch: r.stretch });
  return renderMapTilePng({ tiles, boundsWorld: bounds, resM, sizePx: TILE_GRID.tileSizePx, clip: rows[0].clip });
}
