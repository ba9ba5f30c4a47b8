-- The town boundaries for the web map, in the storage CRS, simplified for one zoom level of the map.
-- Each town is simplified on its own (neighbours may part by up to the tolerance: a line on the map,
-- not a topology), and coordinates are written to the precision the tolerance leaves meaningful.
-- Parameters:
--   :tolerance_m  Douglas–Peucker tolerance (m): the map's resolution at that zoom, at least 0.5
--   :digits       decimals of the coordinates
select t.code, t.name,
       ST_AsGeoJSON(ST_SimplifyPreserveTopology(t.geom, :tolerance_m::float8), :digits::int)::json as geom
from reference_feature t
where t.kind = 'town'
order by t.code;
