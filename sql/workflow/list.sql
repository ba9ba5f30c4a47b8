-- Patches visible to a user, filtered and paged (the filter: list_filter.sql; the total: list_count.sql).
-- Town users see only their town: the scope is part of the filter, so lists, counts and totals never
-- include another town.
-- Parameters:
--   :scope_town  the town of a town user, or null for city-wide roles
--   :month, :town, :status, :class     filters or null
--   :overdue, :escalated                'true' / 'false' or null
--   :min_lon, :min_lat, :max_lon, :max_lat  bbox in lon/lat, or null (transformed once to the storage CRS, so the GiST index on patch.geom serves it)
--   :min_area_m2, :max_area_m2                area range in m², or null
--   :relation                           building_relation (new | extension | on_building), or null
--   :check                              the latest imagery check's result (gone | standing | unclear | no_imagery), or null
--   :source                             where the patches came from (imagery | patrol | complaint), or null
--   :sort, :dir                         code | area_m2 | due (the running deadline, as on the board) | status | town | relation, asc | desc
--   :with_geom                          true: add the outline in the storage CRS (for the web map)
--   :limit, :offset
--   :after                              with sort = code: only patches after this code in the order asked
--                                       for (keyset paging: the page starts where the index is, not
--                                       after reading every row before it), or null
select p.code, p.month, p.town_code, p.town_name, p.grid_code, p.class, p.status, p.source,
       round(p.area_m2::numeric, 1)::float8 as area_m2,
       round(p.farmland_m2::numeric, 1)::float8 as farmland_m2,
       round(p.ecological_m2::numeric, 1)::float8 as ecological_m2,
       round(p.water_m2::numeric, 1)::float8 as water_m2,
       to_char(p.verify_due, 'YYYY-MM-DD') as verify_due, to_char(p.rectify_due, 'YYYY-MM-DD') as rectify_due,
       to_char(p.overdue_since, 'YYYY-MM-DD') as overdue_since, p.escalated_at is not null as escalated,
       p.verification_result, p.measure,
       p.building_relation, round(p.registered_building_m2::numeric, 1)::float8 as registered_building_m2,
       round(p.extension_m2::numeric, 1)::float8 as extension_m2, p.imagery_check,
       round(p.lon::numeric, 7)::float8 as lon,
       round(p.lat::numeric, 7)::float8 as lat,
       case when :with_geom::boolean then ST_AsGeoJSON(p.geom, 2)::json end as geom
from patch p
/*include workflow/list_filter*/
  and (:after::text is null or case when :dir::text = 'desc' then p.code < :after::text else p.code > :after::text end)
order by
  case when :sort::text = 'area_m2' and :dir::text = 'asc' then p.area_m2 end asc nulls last,
  case when :sort::text = 'area_m2' and :dir::text = 'desc' then p.area_m2 end desc nulls last,
  case when :sort::text = 'due' and :dir::text = 'asc' then patch_running_due(p.status, p.verify_due, p.rectify_due) end asc nulls last,
  case when :sort::text = 'due' and :dir::text = 'desc' then patch_running_due(p.status, p.verify_due, p.rectify_due) end desc nulls last,
  case when :sort::text = 'status' and :dir::text = 'asc' then p.status end asc,
  case when :sort::text = 'status' and :dir::text = 'desc' then p.status end desc,
  case when :sort::text = 'town' and :dir::text = 'asc' then p.town_code end asc,
  case when :sort::text = 'town' and :dir::text = 'desc' then p.town_code end desc,
  case when :sort::text = 'relation' and :dir::text = 'asc' then array_position(array['new', 'extension', 'on_building'], p.building_relation) end asc,
  case when :sort::text = 'relation' and :dir::text = 'desc' then array_position(array['new', 'extension', 'on_building'], p.building_relation) end desc,
  case when :sort::text = 'code' and :dir::text = 'desc' then p.code end desc,
  p.code
limit :limit::int offset :offset::int;
