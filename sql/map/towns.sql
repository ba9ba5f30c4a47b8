-- The town boundaries for the web map, in the storage CRS, simplified to half a metre.
-- Parameters: none
select t.code, t.name, ST_AsGeoJSON(ST_SimplifyPreserveTopology(t.geom, 0.5), 2)::json as geom
from reference_feature t
where t.kind = 'town'
order by t.code;
