-- A reported outline as the patch it would be (included by report_place, report_open and report_insert): the
-- GeoJSON in lon/lat (:outline) in the storage CRS, made valid, its polygons only, as a multipolygon.
drawn as (
  select ST_Multi(ST_CollectionExtract(ST_MakeValid(
           ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON(:outline::text), 4326), (select value::int from setting where key = 'storage_srid'))), 3)) as geom
)
