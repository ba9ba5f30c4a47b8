-- New patches per month (first detected that month), for the board's chart: the live ones (not merged,
-- not split), their area and those verified illegal, from the tally the patches' triggers keep
-- (migration 029), not from the patches themselves.
-- Parameters:
--   :since       first month shown (YYYY-MM)
--   :scope_town  town code of a town user, or null
select month, sum(live)::int as new_patches, round(sum(live_area_m2), 1)::float8 as new_area_m2,
       sum(illegal)::int as illegal
from patch_month_tally
where month >= :since::text
  and (:scope_town::text is null or town_code = :scope_town::text)
group by month
order by month;
