-- Replace candidates' outlines by their regularised ones (pipeline/regularise.ts) and recompute
-- what depends on them: true area, zone and registered-building overlaps (the relation stays: a redraw
-- moves an outline by a pixel or two). The area before is kept in raw_area_m2.
-- Parameters:
--   :batch_id   the batch
--   :items      JSON array of {"seq": candidate, "geojson": new outline (Polygon, storage CRS), "method": rectangle | orthogonal}
update batch_candidate c
set raw_area_m2 = c.area_m2,
    geom = g.geom,
    area_m2 = ST_Area(ST_Transform(g.geom, 4326)::geography),
    farmland_m2 = coalesce(zone_overlap_m2('farmland', g.geom), 0),
    ecological_m2 = coalesce(zone_overlap_m2('ecological', g.geom), 0),
    water_m2 = coalesce(zone_overlap_m2('water', g.geom), 0),
    registered_building_m2 = case when c.building_relation = 'new' then 0 else coalesce(zone_overlap_m2('building', g.geom), 0) end,
    extension_m2 = greatest(ST_Area(ST_Transform(g.geom, 4326)::geography)
                            - case when c.building_relation = 'new' then 0 else coalesce(zone_overlap_m2('building', g.geom), 0) end, 0),
    regularised = g.method
from (select (r->>'seq')::int as seq, r->>'method' as method,
             ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON(r->>'geojson'), (select value::int from setting where key = 'storage_srid'))) as geom
      from jsonb_array_elements(:items::jsonb) r) g
where c.batch_id = :batch_id::bigint and c.seq = g.seq;
