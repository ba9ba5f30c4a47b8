-- Imagery tiles of a month that cover the surroundings of a patch, with the patch geometry in
-- the tiles' own CRS (chips are cut on the imagery grid) and each tile's extent in it: for sheet
-- chips, map chips and training chips.
-- Parameters:
--   :code      patch code
--   :month     imagery month (the patch's month, or its baseline month)
--   :margin_m  how far around the patch the chip reaches (m)
select i.path, i.stretch, i.srid, i.gsd_m,
       ST_AsGeoJSON(ST_Transform(p.geom, i.srid), 3)::json as geom,
       ST_AsGeoJSON(ST_Transform(ST_Centroid(p.geom), i.srid), 3)::json as centre,
       -- the raster's own extent (north-up: the geotransform's origin and pixel size), not the footprint's,
       -- which may reach a preview pixel beyond it
       array[least(i.geotransform[1], i.geotransform[1] + i.width_px * i.geotransform[2]),
             least(i.geotransform[4], i.geotransform[4] + i.height_px * i.geotransform[6]),
             greatest(i.geotransform[1], i.geotransform[1] + i.width_px * i.geotransform[2]),
             greatest(i.geotransform[4], i.geotransform[4] + i.height_px * i.geotransform[6])] as bounds
from patch p
join imagery i on i.month = :month::text and ST_Intersects(i.footprint, ST_Expand(p.geom, :margin_m::float8))
where p.code = :code::text
order by i.path;
