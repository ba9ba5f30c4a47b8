-- The yearly register (年度台账): per town, the year's new patches (the months of the year a batch ran)
-- and what became of them, as the city's yearly report leads with — illegal construction found, 处置
-- (rectified: demolished, confiscated, or fined and legalised, then reported done) in patches and area,
-- 腾出土地 (the land freed: demolished or confiscated), the months of zero growth — and what the bureau's
-- 问责 rule reads (illegal construction left unrectified past its deadline, cases listed for supervision).
-- Each count is the monthly report's summed over the year's months (a patch belongs to the month it was
-- found in), so the register and the twelve monthly reports agree.
-- Parameters:
--   :year   YYYY
with towns as (
  select code, name from reference_feature where kind = 'town'
),
months as (
  -- the months counted: a batch ran (or patches were found) in them
  select month from batch where month like :year::text || '-%' and status in ('completed', 'completed_with_failures')
  union
  select distinct month from patch where month like :year::text || '-%'
),
y as (
  select p.* from patch p where p.month in (select month from months) and patch_is_live(p.status)
),
monthly as (
  -- each town in each month counted: zero growth when every new patch was verified (or dismissed) and none is illegal
  select t.code as town_code, mo.month,
         count(y.id) filter (where y.verification_result = 'illegal') = 0
           and count(y.id) filter (where y.verification_result is null and y.status <> 'dismissed') = 0 as zero_growth
  from towns t cross join months mo left join y on y.town_code = t.code and y.month = mo.month
  group by t.code, mo.month
),
counts as (
  select t.code as town_code, t.name as town_name,
         count(y.id)::int as new_patches,
         coalesce(round(sum(y.area_m2)::numeric, 1), 0)::float8 as new_area_m2,
         count(y.verification_result)::int as verified,
         count(y.id) filter (where y.status <> 'dismissed')::int as to_verify,
         count(*) filter (where y.verification_result is null and y.status <> 'dismissed')::int as unverified,
         count(*) filter (where y.verification_result is null and y.status = 'dispatched' and y.overdue_since is not null)::int as unverified_overdue,
         count(*) filter (where y.verification_result = 'illegal')::int as illegal,
         coalesce(sum(y.area_m2) filter (where y.verification_result = 'illegal'), 0)::float8 as illegal_m2,
         count(*) filter (where y.verification_result = 'illegal' and y.status in ('rectified', 'closed'))::int as rectified,
         coalesce(sum(y.area_m2) filter (where y.verification_result = 'illegal' and y.status in ('rectified', 'closed')), 0)::float8 as rectified_m2,
         coalesce(sum(y.area_m2) filter (where y.verification_result = 'illegal' and y.status in ('rectified', 'closed')
                                          and y.measure in ('demolish', 'confiscate')), 0)::float8 as freed_m2,
         count(*) filter (where y.overdue_since is not null and y.status in ('dispatched', 'rectifying'))::int as overdue,
         count(*) filter (where y.overdue_since is not null and y.status = 'rectifying')::int as overdue_unrectified,
         count(*) filter (where y.escalated_at is not null and y.status in ('dispatched', 'rectifying'))::int as escalated,
         count(*) filter (where y.escalated_at is not null)::int as escalations,
         count(*) filter (where y.verification_result = 'illegal' and y.status = 'closed')::int as illegal_closed,
         (select count(*) from monthly mo where mo.town_code = t.code and mo.zero_growth)::int as zero_growth_months
  from towns t left join y on y.town_code = t.code
  group by t.code, t.name
)
select c.*, (select count(*) from months)::int as months
from counts c
order by c.town_code;
