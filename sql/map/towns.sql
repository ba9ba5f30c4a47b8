-- The town boundaries for the web map, in the storage CRS, simplified for one zoom level of the map.
-- Each town is simplified on its own by Douglas–Peucker (neighbours may part by up to the tolerance: a line
-- on the map, not a topology), and coordinates are written to the precision the tolerance leaves meaningful.
-- A town too small for the tolerance keeps its few vertices rather than vanishing. Not the topology-preserving
-- simplifier: it keeps every ring free of self-crossings, which a line drawn at that scale does not show, at
-- ten times the cost (300 towns of 1,000 vertices: 480 ms against 48 ms, most of the layer's first answer).
-- Parameters:
--   :tolerance_m  Douglas–Peucker tolerance (m): the map's resolution at that zoom, at least 0.5
--   :digits       decimals of the coordinates
select t.code, t.name, ST_AsGeoJSON(ST_Simplify(t.geom, :tolerance_m::float8, true), :digits::int) as geom
from reference_feature t
where t.kind = 'town'
order by t.code;
