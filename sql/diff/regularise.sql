-- Replace a candidate's outline by its regularised one (pipeline/regularise.ts) and recompute
-- what depends on it: true area, zone overlaps. The area before is kept in raw_area_m2.
-- Parameters:
--   :batch_id, :seq   the candidate
--   :geojson          the new outline (Polygon, storage CRS)
--   :method           rectangle | orthogonal
update batch_candidate c
set raw_area_m2 = c.area_m2,
    geom = g.geom,
    area_m2 = ST_Area(ST_Transform(g.geom, 4326)::geography),
    farmland_m2 = coalesce(zone_overlap_m2('farmland', g.geom), 0),
    ecological_m2 = coalesce(zone_overlap_m2('ecological', g.geom), 0),
    water_m2 = coalesce(zone_overlap_m2('water', g.geom), 0),
    regularised = :method::text
from (select ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON(:geojson::text), ST_SRID(geom))) as geom from batch_candidate where batch_id = :batch_id::bigint and seq = :seq::int) g
where c.batch_id = :batch_id::bigint and c.seq = :seq::int;
