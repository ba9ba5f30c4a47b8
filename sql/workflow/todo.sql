-- A user's to-do list: every live patch in a state that waits on their role, across months, the
-- running deadline first (patches with none after), oldest month first.
-- Parameters:
--   :states      JSON array of the states that wait on the user's role
--   :scope_town  town code of a town user, or null
select p.code, p.month, p.town_code, p.town_name, p.status, p.class,
       round(p.area_m2::numeric, 1)::float8 as area_m2,
       to_char(patch_running_due(p.status, p.verify_due, p.rectify_due), 'YYYY-MM-DD') as due,
       case p.status when 'dispatched' then 'verification' when 'rectifying' then 'rectification' end as deadline,
       to_char(p.overdue_since, 'YYYY-MM-DD') as overdue_since, p.escalated_at is not null as escalated
from patch p
where p.status in (select jsonb_array_elements_text(:states::jsonb))
  and (:scope_town::text is null or p.town_code = :scope_town::text)
order by patch_running_due(p.status, p.verify_due, p.rectify_due) nulls last, p.month, p.code;
