-- Current-month images of a batch with the baseline-month images whose footprints overlap them.
-- Parameters:
--   :month           the current month (YYYY-MM)
--   :baseline_month  the baseline month (YYYY-MM)
-- An image with no overlapping baseline comes back with an empty baseline_ids array.
select c.id, c.path,
       coalesce(array_agg(b.id order by b.path) filter (where b.id is not null), '{}') as baseline_ids
from imagery c
left join imagery b
  on b.month = :baseline_month::text
 and ST_Intersects(b.footprint, c.footprint)
 and ST_Area(ST_Intersection(b.footprint, c.footprint)) > 0
where c.month = :month::text
group by c.id, c.path
order by c.path;
