-- Supervisor board: running deadlines due by :due_by, overdue and escalated patches, per town; of each
-- town's three lists the :per_list most urgent, each with how many the list holds in all (a province's
-- board lists counts, not every one of tens of thousands of overdue cases).
-- Parameters:
--   :today       YYYY-MM-DD
--   :due_by      YYYY-MM-DD, the last day of the window (N working days from today)
--   :scope_town  town code of a town user, or null
--   :per_list    most items shown per town and list
with hits as (
  select p.code, p.town_code, p.town_name, p.status, p.class,
         patch_running_due(p.status, p.verify_due, p.rectify_due) as due_on,
         case when p.status = 'dispatched' then 'verification' else 'rectification' end as deadline,
         case when p.escalated_at is not null then 'escalated'
              when p.overdue_since is not null then 'overdue'
              else 'due_soon' end as list
  from patch p
  where p.status in ('dispatched', 'rectifying')
    and (:scope_town::text is null or p.town_code = :scope_town::text)
    and (p.overdue_since is not null or p.escalated_at is not null
         or patch_running_due(p.status, p.verify_due, p.rectify_due) <= :due_by::date)
), ranked as (
  select h.*, row_number() over (partition by h.town_code, h.list order by h.due_on, h.code) as n,
         count(*) over (partition by h.town_code, h.list) as in_list
  from hits h
)
select code, town_code, town_name, status, class, to_char(due_on, 'YYYY-MM-DD') as due, deadline, list,
       in_list::int as in_list
from ranked
where n <= :per_list::int
order by town_code, due_on, code;
