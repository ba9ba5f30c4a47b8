import type { Db } from '../../store/db.ts';

/**
 * The patch table as rows to compare between runs: codes, attributes, geometry (WKT snapped to
 * 1 cm), observations and events. Ids and timestamps are left out; everything else must match.
 */
export async function patchSnapshot(db: Db): Promise<Record<string, unknown>[]> {
  const { rows } = await db.raw(`
    select p.code, p.month, p.town_code, p.grid_code, p.status, p.district_code,
           round(p.area_m2::numeric, 2)::text as area_m2,
           round(p.farmland_m2::numeric, 2)::text as farmland_m2,
           round(p.ecological_m2::numeric, 2)::text as ecological_m2,
           round(p.water_m2::numeric, 2)::text as water_m2,
           round(p.mean_prob::numeric, 4)::text as mean_prob,
           (select array_agg(regexp_replace(t, '^.*/', '') order by t) from unnest(p.source_tiles) t) as source_tiles,
           ST_AsText(ST_SnapToGrid(p.geom, 0.01)) as wkt,
           (select count(*) from patch_observation o where o.patch_id = p.id)::int as observations,
           (select string_agg(e.type, ',' order by e.id) from patch_event e where e.patch_id = p.id) as events
    from patch p order by p.code`);
  return rows;
}
