-- What the web map needs to set itself up: each registered month with the extent of its imagery
-- (storage CRS) and the baseline month its latest batch compared it with.
-- Parameters: none
select i.month,
       ST_XMin(ST_Extent(i.footprint)) as min_x, ST_YMin(ST_Extent(i.footprint)) as min_y,
       ST_XMax(ST_Extent(i.footprint)) as max_x, ST_YMax(ST_Extent(i.footprint)) as max_y,
       min(i.gsd_m) as gsd_m, count(*)::int as tiles,
       (select b.baseline_month from batch b where b.month = i.month order by b.id desc limit 1) as baseline_month
from imagery i
group by i.month
order by i.month;
