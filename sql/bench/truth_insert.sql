-- One image's ground-truth buildings into the bench's own table (scripts/bench-real.ts creates
-- bench_truth in the bench's schema; tuban never reads it). Outlines traced from the label can
-- touch themselves where two pixels meet only at a corner, which OGC calls invalid; those are
-- repaired with ST_MakeValid (areas are unchanged) and counted.
-- Parameters:
--   :image       the image the label belongs to, e.g. test_4.png
--   :kind        what the buildings are (bench-followup's cases; bench-real's are all 'new')
--   :srid        EPSG code of the coordinates (bench_truth's own)
--   :geometries  JSON array of GeoJSON Polygon or MultiPolygon geometries
-- Returns the number of rows inserted and of outlines repaired.
with src as (
  select ST_SetSRID(ST_GeomFromGeoJSON(g::text), :srid::int) as geom
  from json_array_elements(:geometries::json) g
),
fixed as (
  select ST_IsValid(geom) as valid,
         ST_Multi(ST_CollectionExtract(case when ST_IsValid(geom) then geom else ST_MakeValid(geom) end, 3)) as geom
  from src
),
inserted as (
  insert into bench_truth (image, kind, geom)
  select :image::text, :kind::text, geom from fixed where not ST_IsEmpty(geom)
  returning id
)
select (select count(*) from inserted)::int as inserted, (select count(*) from fixed where not valid)::int as repaired;
