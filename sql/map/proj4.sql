-- The PROJ definition of a CRS, for the web map's projection.
-- Parameters:
--   :srid
select proj4text from spatial_ref_sys where srid = :srid::int;
