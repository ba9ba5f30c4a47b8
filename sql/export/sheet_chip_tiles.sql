-- The imagery tiles of every sheet chip of the patches named, as export/chip_tiles gives them one chip at a
-- time: the detail before (the baseline month's imagery, 15 m around the patch), the detail after and the
-- overview (the patch's month, 15 m and 150 m around). One statement for a town's or a province's sheets,
-- so a package reads them in its snapshot without a query per chip.
-- Parameters:
--   :codes  the patches, a text array literal
select p.code, c.chip, i.path, i.stretch,
       ST_AsGeoJSON(ST_Transform(p.geom, i.srid), 3)::json as geom,
       ST_AsGeoJSON(ST_Transform(ST_Centroid(p.geom), i.srid), 3)::json as centre
from patch p
cross join (values ('before', 15), ('after', 15), ('overview', 150)) as c(chip, margin_m)
join imagery i on i.month = case c.chip when 'before' then p.baseline_month else p.month end
              and ST_Intersects(i.footprint, ST_Expand(p.geom, c.margin_m::float8))
where p.code = any(:codes::text[])
order by p.code, c.chip, i.path;
