import { say } from '../i18n/say.ts';
import type { Knex } from 'knex';
import { renderMapTilePng } from '../export/tile.ts';
import { BadInputError } from '../core/errors.ts';
import type { GeoTiffCache } from '../pipeline/io/geotiff.source.ts';
import type { BandStretch } from '../pipeline/raster.normalise.ts';
import { runSql } from './sql.ts';
import { scopeTown } from './patch.row.ts';
import type { User } from './users.ts';
import { addMonths } from '../core/month.ts';
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
export const MAX_IMAGERY_RES = 2;

/** The web map's configuration: the CRS, the tile grid and the months with imagery (api/responses.ts). */
export type MapConfig = MapConfigBody;

export async function mapConfig(db: Knex, srid: number): Promise<MapConfig> {
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

/** The town boundaries as GeoJSON in the storage CRS (every town: boundaries are public). */
/** Changes whenever the town layer is imported again (or a town added or removed). */
export async function townLayerVersion(db: Knex): Promise<string> {
  const r = await db('reference_feature')
    .where({ kind: 'town' })
    .first(
      db.raw('count(*)::int as n'),
      db.raw('coalesce(max(id), 0)::bigint as last'),
      db.raw('max(imported_at) as at'),
    );
  return `${r.n}-${r.last}-${r.at ? new Date(r.at).getTime() : 0}`;
}

export async function townBoundaries(db: Knex): Promise<TownsBody> {
  const rows = await runSql<{ code: string; name: string; geom: unknown }>(db, 'map/towns', {});
  return {
    type: 'FeatureCollection',
    features: rows.map((r) => ({
      type: 'Feature' as const,
      id: r.code,
      geometry: r.geom,
      properties: { code: r.code, name: r.name },
    })),
  };
}

/**
 * One 256² PNG map tile of a month's imagery (transparent where no imagery is), or null when the
 * zoom level is coarser than imagery is drawn at or no tile of the month covers it.
 */
/** How far beyond their town a town user sees imagery (m): enough for context at a boundary. */
export const TOWN_IMAGERY_MARGIN_M = 200;

export async function renderMapTile(
  db: Knex,
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

/** New patches per month over the last `months` months (town-scoped), for the board's chart. */
export async function patchTrend(
  db: Knex,
  user: User,
  lastMonth: string,
  months = 12,
): Promise<{ month: string; new_patches: number; new_area_m2: number; illegal: number }[]> {
  const since = addMonths(lastMonth, -(months - 1));
  const rows = await runSql<{ month: string; new_patches: number; new_area_m2: number; illegal: number }>(
    db,
    'workflow/trend',
    { since, scope_town: scopeTown(user) },
  );
  const byMonth = new Map(rows.map((r) => [r.month, r]));
  const out = [];
  for (let i = 0; i < months; i++) {
    const key = addMonths(since, i);
    if (key > lastMonth) break;
    out.push(byMonth.get(key) ?? { month: key, new_patches: 0, new_area_m2: 0, illegal: 0 });
  }
  return out;
}
