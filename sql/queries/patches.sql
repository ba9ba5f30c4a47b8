-- Patches first detected in a month, optionally of one town, in code order.
-- Parameters:
--   :month      YYYY-MM
--   :town_code  town code, or null for every town
select p.code, p.month, p.district_code, p.town_code, p.town_name, p.grid_code, p.grid_name,
       round(p.area_m2::numeric, 1)::float8 as area_m2,
       round(p.farmland_m2::numeric, 1)::float8 as farmland_m2,
       round(p.ecological_m2::numeric, 1)::float8 as ecological_m2,
       round(p.water_m2::numeric, 1)::float8 as water_m2,
       round(p.mean_prob::numeric, 3)::float8 as mean_prob,
       p.status, p.source, p.model_name, p.model_version, p.source_tiles,
       p.building_relation, round(p.registered_building_m2::numeric, 1)::float8 as registered_building_m2,
       round(p.extension_m2::numeric, 1)::float8 as extension_m2, p.imagery_check,
       round(ST_X(p.centroid)::numeric, 2)::float8 as x, round(ST_Y(p.centroid)::numeric, 2)::float8 as y,
       round(p.lon::numeric, 7)::float8 as lon,
       round(p.lat::numeric, 7)::float8 as lat,
       (select count(*) from patch_observation o where o.patch_id = p.id)::int as observations,
       ST_AsGeoJSON(ST_Transform(p.geom, 4326), 7)::json as geometry
from patch p
where p.month = :month::text and (:town_code::text is null or p.town_code = :town_code::text)
order by p.code;
