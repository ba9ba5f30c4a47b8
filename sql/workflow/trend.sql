-- New patches per month (first detected that month), for the board's chart.
-- Parameters:
--   :since       first month shown (YYYY-MM)
--   :scope_town  town code of a town user, or null
select p.month, count(*)::int as new_patches, round(sum(p.area_m2)::numeric, 1)::float8 as new_area_m2,
       count(*) filter (where p.verification_result = 'illegal')::int as illegal
from patch p
where p.month >= :since::text
  and patch_is_live(p.status)
  and (:scope_town::text is null or p.town_code = :scope_town::text)
group by p.month
order by p.month;
