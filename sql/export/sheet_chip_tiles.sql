-- The imagery tiles of every sheet chip of the patches named, as export/chip_tiles gives them one chip at a
-- time: the detail before (the baseline month's imagery, :detail_m around the patch), the detail after and
-- the overview (the patch's month, :detail_m and :overview_m around). One statement for a town's or a
-- province's sheets, so a package reads them in its snapshot without a query per chip.
-- Parameters:
--   :codes                  the patches, a text array literal
--   :detail_m :overview_m   how far around the patch each kind of chip reaches (m)
select p.code, c.chip, i.path, i.stretch,
       ST_AsGeoJSON(ST_Transform(p.geom, i.srid), 3)::json as geom,
       ST_AsGeoJSON(ST_Transform(ST_Centroid(p.geom), i.srid), 3)::json as centre
from patch p
cross join (values ('before', :detail_m::float8), ('after', :detail_m::float8), ('overview', :overview_m::float8))
  as c(chip, margin_m)
join imagery i on i.month = case c.chip when 'before' then p.baseline_month else p.month end
              and ST_Intersects(i.footprint, ST_Expand(p.geom, c.margin_m))
where p.code = any(:codes::text[])
order by p.code, c.chip, i.path;
