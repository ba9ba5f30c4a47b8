-- Insert one reference feature, repairing invalid geometry with ST_MakeValid.
-- Parameters:
--   :kind, :code, :name, :district_code, :valid_from, :valid_to, :props (jsonb text)
--   :source_file, :source_index
--   :geojson   the feature's geometry as GeoJSON text
--   :srid      EPSG code of the coordinates
-- Returns the new id, whether the geometry was repaired, and the reason it was invalid;
-- returns no row when nothing polygonal is left after repair (the caller rejects the feature).
with src as (
  select ST_SetSRID(ST_GeomFromGeoJSON(:geojson::text), :srid::int) as geom
),
checked as (
  select geom, ST_IsValid(geom) as valid, ST_IsValidReason(geom) as reason from src
),
fixed as (
  select valid, reason,
         ST_Multi(ST_CollectionExtract(case when valid then geom else ST_MakeValid(geom) end, 3)) as geom
  from checked
)
insert into reference_feature (kind, code, name, district_code, valid_from, valid_to, props, source_file, source_index, repaired, geom)
select :kind::text, :code::text, :name::text, :district_code::text, :valid_from::date, :valid_to::date, :props::jsonb,
       :source_file::text, :source_index::int, not valid,
       ST_Transform(geom, (select value::int from setting where key = 'storage_srid'))
from fixed
where not ST_IsEmpty(geom) and ST_Area(geom) > 0
returning id, repaired, (select reason from fixed) as invalid_reason;
