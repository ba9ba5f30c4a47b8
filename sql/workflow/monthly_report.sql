-- Monthly town report: per town, the month's new patches and how far they got, zero growth
-- (新增两违零增长: no patch of the month confirmed illegal), and the change from last month.
-- Every town of the town layer appears, patches or not. Town users get their own row only.
-- Parameters:
--   :month       YYYY-MM
--   :prev_month  YYYY-MM, the month before
--   :scope_town  town code of a town user, or null
with towns as (
  select code, name from reference_feature where kind = 'town' and (:scope_town::text is null or code = :scope_town::text)
),
m as (
  select p.* from patch p where p.month = :month::text and patch_is_live(p.status)
)
select t.code as town_code, t.name as town_name,
       count(m.id)::int as new_patches,
       coalesce(round(sum(m.area_m2)::numeric, 1), 0)::float8 as new_area_m2,
       count(m.verification_result)::int as verified,
       case when count(m.id) filter (where m.status <> 'dismissed') = 0 then null
            else round(100.0 * count(m.verification_result) / count(m.id) filter (where m.status <> 'dismissed'), 1)::float8 end as verified_pct,
       count(*) filter (where m.verification_result = 'illegal')::int as illegal,
       count(*) filter (where m.verification_result = 'illegal' and m.status in ('rectified', 'closed'))::int as rectified,
       count(*) filter (where m.overdue_since is not null and m.status in ('dispatched', 'rectifying'))::int as overdue,
       count(*) filter (where m.escalated_at is not null and m.status in ('dispatched', 'rectifying'))::int as escalated,
       count(*) filter (where m.verification_result = 'illegal') = 0 as zero_growth,
       (select count(*) from patch q where q.month = :prev_month::text and q.town_code = t.code and patch_is_live(q.status))::int as prev_new_patches
from towns t left join m on m.town_code = t.code
group by t.code, t.name
order by zero_growth desc, illegal, new_patches, t.code;
