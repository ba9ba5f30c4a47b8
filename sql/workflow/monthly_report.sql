-- Monthly town report: per town, the month's new patches and how far they got, and the ranking the
-- bureau publishes. 新增两违零增长 (zero growth) only when every new patch of the month has been
-- verified (or dismissed in the office) and none was found illegal: a patch nobody went to see is
-- not growth prevented. Ranked by zero growth, then by what counts against a town (patches found
-- illegal, and patches left unverified past their verification deadline), then by patches still
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
         count(*) filter (where m.building_relation = 'extension')::int as new_extension,
         count(*) filter (where m.building_relation = 'on_building')::int as new_on_building,
         (select count(*) from patch q where q.month = :prev_month::text and q.town_code = t.code and patch_is_live(q.status))::int as prev_new_patches
  from towns t left join m on m.town_code = t.code
  group by t.code, t.name
)
select c.*, c.illegal = 0 and c.unverified = 0 as zero_growth
from counts c
order by c.illegal = 0 and c.unverified = 0 desc, c.illegal + c.unverified_overdue, c.unverified, c.new_patches, c.town_code;
