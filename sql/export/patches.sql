-- Patch rows for the delivery exports (GIS files, spreadsheets), scoped like the API.
-- Parameters:
--   :month       YYYY-MM
--   :town        town code filter, or null
--   :scope_town  town of a town user, or null
--   :with_geom   false: no outlines (a spreadsheet or sheets need none; GIS files do)
--   :states      the states to include as a PostgreSQL array literal ({dispatched,illegal}), or null for every state
-- (the months' acquisition dates are read once, not per row)
with acquired as (
  select i.month, to_char(max(i.acquired_on), 'YYYY-MM-DD') as on_date from imagery i group by i.month
)
select p.code, p.month, p.baseline_month, p.district_code, p.town_code, p.town_name, p.grid_code, p.grid_name, p.class, p.status,
       p.verification_result, p.violation, p.measure, p.escalated_at is not null as escalated,
       to_char(p.verify_due, 'YYYY-MM-DD') as verify_due, to_char(p.rectify_due, 'YYYY-MM-DD') as rectify_due,
       to_char(p.overdue_since, 'YYYY-MM-DD') as overdue_since,
       p.area_m2, p.farmland_m2, p.ecological_m2, p.water_m2, p.mean_prob, p.model_name, p.model_version, p.source,
       p.building_relation, p.registered_building_m2, p.extension_m2, p.imagery_check,
       b.on_date as before_date, a.on_date as after_date,
       ST_X(p.centroid) as x, ST_Y(p.centroid) as y,
       p.lon, p.lat,
       p.latest_note as note,
       ST_SRID(p.geom) as srid,
       case when :with_geom::boolean then ST_AsGeoJSON(p.geom, 3)::json end as geom_storage,
       case when :with_geom::boolean then ST_AsGeoJSON(ST_Transform(p.geom, 4326), 7)::json end as geom_lonlat
from patch p
left join acquired b on b.month = p.baseline_month
left join acquired a on a.month = p.month
where p.month = :month::text
  and patch_is_live(p.status)
  and (:town::text is null or p.town_code = :town::text)
  and (:scope_town::text is null or p.town_code = :scope_town::text)
  and (:states::text[] is null or p.status = any(:states::text[]))
order by p.town_code, p.code;
