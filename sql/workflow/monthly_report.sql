-- Monthly town report: per town, the month's new patches and how far they got, and the ranking the
-- bureau publishes. 新增两违零增长 (zero growth) only when every new patch of the month has been
-- verified (or dismissed in the office) and none was found illegal: a patch nobody went to see is
-- not growth prevented. Ranked by zero growth, then by the points against a town (penalty, lower is
-- better): a patch found illegal 1 (0.5 once rectified and closed), a patch left unverified past its
-- verification deadline 1.5 (视同违法, and more: not verifying never ranks above verifying and finding
-- illegal construction), each case listed for supervision (挂牌督办) 1 more; then by patches still
-- unverified, then by new patches. Every town of the town layer appears, patches or not, for every
-- role: the ranking is public within the bureau (patch details stay scoped).
-- Parameters:
--   :month       YYYY-MM
--   :prev_month  YYYY-MM, the month before
with towns as (
  select code, name from reference_feature where kind = 'town'
),
m as (
  select p.* from patch p where p.month = :month::text and patch_is_live(p.status)
),
counts as (
  select t.code as town_code, t.name as town_name,
         count(m.id)::int as new_patches,
         coalesce(round(sum(m.area_m2)::numeric, 1), 0)::float8 as new_area_m2,
         count(m.verification_result)::int as verified,
         case when count(m.id) filter (where m.status <> 'dismissed') = 0 then null
              else round(100.0 * count(m.verification_result) / count(m.id) filter (where m.status <> 'dismissed'), 1)::float8 end as verified_pct,
         count(*) filter (where m.verification_result is null and m.status <> 'dismissed')::int as unverified,
         count(*) filter (where m.verification_result is null and m.status = 'dispatched' and m.overdue_since is not null)::int as unverified_overdue,
         count(*) filter (where m.verification_result = 'illegal')::int as illegal,
         count(*) filter (where m.verification_result = 'illegal' and m.status in ('rectified', 'closed'))::int as rectified,
         count(*) filter (where m.overdue_since is not null and m.status in ('dispatched', 'rectifying'))::int as overdue,
         count(*) filter (where m.escalated_at is not null and m.status in ('dispatched', 'rectifying'))::int as escalated,
         count(*) filter (where m.verification_result = 'illegal' and m.status = 'closed')::int as illegal_closed,
         count(*) filter (where m.building_relation = 'extension')::int as new_extension,
         count(*) filter (where m.building_relation = 'on_building')::int as new_on_building,
         -- the month before's live patches, from the tally (migration 029) the trend reads: counting them here
         -- read each town's rows, 0.3 s of the report at 10 M patches
         coalesce((select q.live from patch_month_tally q where q.month = :prev_month::text and q.town_code = t.code), 0)
           as prev_new_patches
  from towns t left join m on m.town_code = t.code
  group by t.code, t.name
)
select c.*, c.illegal = 0 and c.unverified = 0 as zero_growth, p.penalty
from counts c
cross join lateral (
  select ((c.illegal - c.illegal_closed) * 1.0 + c.illegal_closed * 0.5 + c.unverified_overdue * 1.5 + c.escalated * 1.0)::float8 as penalty
) p
order by c.illegal = 0 and c.unverified = 0 desc, p.penalty, c.unverified, c.new_patches, c.town_code;
