-- Where a reported outline lies and what it meets, before it becomes a patch (workflow/report_insert):
-- its area; its town and grid (the larger share, as the diff picks them); its zone overlaps; how it meets
-- the registered buildings (as the diff classes a change); whether the month's imagery and its baseline
-- month's cover it. The open patches it overlaps are read apart (report_open), under the district's
-- numbering lock this measure tells.
-- Parameters:
--   :outline    GeoJSON Polygon or MultiPolygon in lon/lat (EPSG:4326), made valid here
--   :month      the imagery month the outline was drawn on (YYYY-MM)
--   :baseline   the month it is compared with (YYYY-MM), or null when the month has no batch
--   :touch_m    how near a registered building an outline counts as meeting it (m), TUBAN_BUILDING_TOUCH_M
--   :on_building_share  share of the outline on registered footprints that makes it on_building
with /*include workflow/report_drawn*/,
measured as (
  select d.geom, ST_IsEmpty(d.geom) as empty,
         coalesce(ST_Area(ST_Transform(d.geom, 4326)::geography), 0) as area_m2,
         reg.near,
         case when reg.near then coalesce(ST_Area(ST_Transform(ST_Intersection(reg.footprints, d.geom), 4326)::geography), 0) else 0 end
           as registered_building_m2
  from drawn d
  cross join lateral (
    select count(*) > 0 as near, ST_Union(b.geom) filter (where ST_Intersects(b.geom, d.geom)) as footprints
    from reference_feature b
    where b.kind = 'building' and ST_DWithin(b.geom, d.geom, :touch_m::float8)
  ) reg
)
select m.empty, m.area_m2,
       town.code as town_code, town.name as town_name, town.district_code,
       grid.code as grid_code, grid.name as grid_name,
       coalesce(zone_overlap_m2('farmland', m.geom), 0) as farmland_m2,
       coalesce(zone_overlap_m2('ecological', m.geom), 0) as ecological_m2,
       coalesce(zone_overlap_m2('water', m.geom), 0) as water_m2,
       case when not m.near then 'new'
            when m.registered_building_m2 >= :on_building_share::float8 * m.area_m2 then 'on_building'
            else 'extension' end as building_relation,
       m.registered_building_m2,
       -- the share of the outline outside the month's (and the baseline month's) images: measured, not
       -- ST_Covers, since footprints reprojected from another CRS can leave slivers between them
       coalesce((select ST_Area(ST_Difference(m.geom, ST_Union(i.footprint))) from imagery i
                 where i.month = :month::text and ST_Intersects(i.footprint, m.geom)), m.area_m2) as month_outside_m2,
       coalesce((select ST_Area(ST_Difference(m.geom, ST_Union(i.footprint))) from imagery i
                 where i.month = :baseline::text and ST_Intersects(i.footprint, m.geom)), m.area_m2) as baseline_outside_m2
from measured m
left join lateral (
  select t.code, t.name, t.district_code from reference_feature t
  where t.kind = 'town' and ST_Intersects(t.geom, m.geom)
  order by ST_Area(ST_Intersection(t.geom, m.geom)) desc, t.code limit 1
) town on true
left join lateral (
  select g.code, g.name from reference_feature g
  where g.kind = 'grid' and ST_Intersects(g.geom, m.geom)
  order by ST_Area(ST_Intersection(g.geom, m.geom)) desc, g.code limit 1
) grid on true;
