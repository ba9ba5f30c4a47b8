-- Imagery tiles of a month that cover a map tile, in the storage CRS (the map's CRS).
-- Parameters:
--   :month                           YYYY-MM
--   :min_x, :min_y, :max_x, :max_y   map tile bounds in the storage CRS
--   :srid                            the storage CRS (imagery in another CRS is not drawn)
select i.path, i.stretch
from imagery i
where i.month = :month::text
  and i.srid = :srid::int
  and i.footprint && ST_MakeEnvelope(:min_x::float8, :min_y::float8, :max_x::float8, :max_y::float8, :srid::int)
order by i.path;
