-- One part of a split: the parent's geometry cut by a drawn polygon becomes a new patch with
-- the parent's month, town, state, deadlines and relation to registered buildings, its own code,
-- area, zone overlaps and overlap with registered buildings; a reported patch's parts are reported too.
-- Parameters:
--   :parent_id  the patch being split
--   :part       the drawn polygon as GeoJSON in lon/lat (EPSG:4326); a self-intersecting one (a bow-tie) is made valid first
--   :seq        sequence number of the new patch within its district and month
-- Returns the new patch's id and code, or no row when the part does not overlap the parent.
with parent as (select * from patch where id = :parent_id::bigint),
cut as (
  select ST_Multi(ST_CollectionExtract(ST_Intersection(p.geom, ST_Transform(ST_MakeValid(ST_SetSRID(ST_GeomFromGeoJSON(:part::text), 4326)), ST_SRID(p.geom))), 3)) as geom
  from parent p
),
zones as (
  select c.geom,
         zone_overlap_m2('farmland', c.geom) as farmland_m2,
         zone_overlap_m2('ecological', c.geom) as ecological_m2,
         zone_overlap_m2('water', c.geom) as water_m2,
         ST_Area(ST_Transform(c.geom, 4326)::geography) as area_m2,
         case when p.building_relation = 'new' then 0 else coalesce(zone_overlap_m2('building', c.geom), 0) end as registered_building_m2
  from cut c, parent p where not ST_IsEmpty(c.geom)
)
insert into patch (code, month, seq, batch_id, baseline_month, district_code, town_code, town_name, grid_code, grid_name,
                   area_m2, farmland_m2, ecological_m2, water_m2, mean_prob, source_tiles, model_name, model_version, status,
                   geom, centroid, class, dispatched_at, verify_due, split_from,
                   building_relation, registered_building_m2, extension_m2, source, visible, reported_by)
select patch_code(p.district_code, p.month, :seq::bigint), p.month, :seq::int, p.batch_id, p.baseline_month,
       p.district_code, p.town_code, p.town_name, p.grid_code, p.grid_name,
       z.area_m2, z.farmland_m2, z.ecological_m2, z.water_m2, p.mean_prob, p.source_tiles,
       p.model_name, p.model_version, p.status, z.geom, ST_PointOnSurface(z.geom),
       patch_class(z.farmland_m2, z.ecological_m2, z.water_m2),
       p.dispatched_at, p.verify_due, p.id,
       p.building_relation, z.registered_building_m2, greatest(z.area_m2 - z.registered_building_m2, 0), p.source, p.visible, p.reported_by
from parent p, zones z
returning id, code, area_m2;
