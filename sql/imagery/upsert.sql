-- Register (or re-register) one image of a month.
-- Parameters:
--   :month, :path, :acquired_on (date), :file_bytes, :etag (null for a local file), :width_px, :height_px, :band_count,
--   :sample_type, :nodata, :srid (the image's EPSG code), :geotransform (float8[] as text '{…}'),
--   :gsd_m, :stretch (jsonb text or null), :preview_path and :preview_res_m (null without a preview)
--   :footprint_wkt  the image footprint polygon in the image's CRS (WKT)
insert into imagery (month, path, acquired_on, file_bytes, etag, width_px, height_px, band_count, sample_type, nodata, srid, geotransform, gsd_m, stretch, preview_path, preview_res_m, footprint)
values (:month::text, :path::text, :acquired_on::date, :file_bytes::bigint, :etag::text, :width_px::int, :height_px::int, :band_count::int, :sample_type::text,
        :nodata::float8, :srid::int, :geotransform::float8[], :gsd_m::float8, :stretch::jsonb, :preview_path::text, :preview_res_m::float8,
        ST_Transform(ST_GeomFromText(:footprint_wkt::text, :srid::int), (select value::int from setting where key = 'storage_srid')))
on conflict (month, path) do update set
  acquired_on = excluded.acquired_on, file_bytes = excluded.file_bytes, etag = excluded.etag, width_px = excluded.width_px, height_px = excluded.height_px,
  band_count = excluded.band_count, sample_type = excluded.sample_type, nodata = excluded.nodata, srid = excluded.srid,
  geotransform = excluded.geotransform, gsd_m = excluded.gsd_m, stretch = excluded.stretch,
  preview_path = excluded.preview_path, preview_res_m = excluded.preview_res_m, footprint = excluded.footprint,
  registered_at = now()
returning id, (xmax = 0) as inserted;
