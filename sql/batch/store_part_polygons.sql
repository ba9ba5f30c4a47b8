-- Replaces a part's change polygons with the ones in :features, in one statement: the part's old
-- rows are deleted first (the insert reads the count of deleted rows, which makes the delete run
-- before it), so running a part again yields the same rows. Geometries come as GeoJSON in the
-- imagery's CRS (:srid) and are stored in the storage CRS.
-- Parameters:
--   :batch_id, :imagery_id, :part, :srid
--   :features  JSON array of {seq, geometry, area_m2, pixel_count, mean_prob}
with gone as (
  delete from change_polygon
  where batch_id = :batch_id::bigint and imagery_id = :imagery_id::bigint and part = :part::int
  returning 1
)
insert into change_polygon (batch_id, imagery_id, part, seq, geom, area_m2, pixel_count, mean_prob)
select :batch_id::bigint, :imagery_id::bigint, :part::int, f.seq,
       ST_Multi(ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON(f.geometry), :srid::int), (select value::int from setting where key = 'storage_srid'))),
       f.area_m2, f.pixel_count, f.mean_prob
from json_to_recordset(:features::json) as f (seq integer, geometry text, area_m2 double precision, pixel_count integer, mean_prob double precision)
cross join (select count(*) from gone) as g;
