-- A reported patch (patrol or complaint) written with what workflow/report_place measured: no batch, no
-- model; dispatched to its town at once when the town reported it (verify_due given), else detected for the
-- office to dispatch like any other.
-- Parameters:
--   :outline   GeoJSON in lon/lat (EPSG:4326), as report_place read it
--   :code, :seq, :month, :baseline, :district_code, :town_code, :town_name, :grid_code, :grid_name
--   :area_m2, :farmland_m2, :ecological_m2, :water_m2, :building_relation, :registered_building_m2
--   :source    patrol or complaint
--   :visible   whether the month's imagery shows it (against the baseline month's)
--   :status    detected or dispatched
--   :verify_due  the verification deadline when dispatched, else null
--   :reported_by, :report_key  the user and their request key
with /*include workflow/report_drawn*/
insert into patch (code, month, seq, batch_id, baseline_month, district_code, town_code, town_name, grid_code, grid_name,
                   area_m2, farmland_m2, ecological_m2, water_m2, mean_prob, source_tiles, model_name, model_version, status,
                   geom, centroid, class, dispatched_at, verify_due, building_relation, registered_building_m2, extension_m2,
                   source, visible, reported_by, report_key)
select :code::text, :month::text, :seq::int, null, :baseline::text, :district_code::text, :town_code::text, :town_name::text,
       :grid_code::text, :grid_name::text,
       :area_m2::float8, :farmland_m2::float8, :ecological_m2::float8, :water_m2::float8, null, '{}'::text[], null, null, :status::text,
       d.geom, ST_PointOnSurface(d.geom), patch_class(:farmland_m2::float8, :ecological_m2::float8, :water_m2::float8),
       case when :status::text = 'dispatched' then now() end, :verify_due::date,
       :building_relation::text, :registered_building_m2::float8, greatest(:area_m2::float8 - :registered_building_m2::float8, 0),
       :source::text, :visible::boolean, :reported_by::text, :report_key::text
from drawn d
returning id, code, class;
