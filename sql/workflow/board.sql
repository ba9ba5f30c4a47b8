-- Supervisor board: running deadlines due by :due_by, overdue and escalated patches, per town; of each
-- town's three lists the :per_list most urgent, each with how many the list holds in all (a province's
-- board lists counts, not every one of tens of thousands of overdue cases). The sizes are counted from
-- the open cases' covering index; each list's first rows are read in order from patch_board_idx
-- (migration 028), whose expressions the list and deadline below repeat word for word.
-- Parameters:
--   :today       YYYY-MM-DD
--   :due_by      YYYY-MM-DD, the last day of the window (N working days from today)
--   :scope_town  town code of a town user, or null
--   :per_list    most items shown per town and list
with lists as (
  select p.town_code,
         case when p.escalated_at is not null then 'escalated' when p.overdue_since is not null then 'overdue' else 'due_soon' end as list,
         count(*) as in_list
  from patch p
  where p.status in ('dispatched', 'rectifying')
    and (:scope_town::text is null or p.town_code = :scope_town::text)
    and (p.overdue_since is not null or p.escalated_at is not null
         or patch_running_due(p.status, p.verify_due, p.rectify_due) <= :due_by::date)
  group by 1, 2
)
select top.code, l.town_code, top.town_name, top.status, top.class, to_char(top.due_on, 'YYYY-MM-DD') as due,
       top.deadline, l.list, l.in_list::int as in_list
from lists l
cross join lateral (
  select p.code, p.town_name, p.status, p.class,
         patch_running_due(p.status, p.verify_due, p.rectify_due) as due_on,
         case when p.status = 'dispatched' then 'verification' else 'rectification' end as deadline
  from patch p
  where p.status in ('dispatched', 'rectifying')
    and p.town_code = l.town_code
    and (case when p.escalated_at is not null then 'escalated' when p.overdue_since is not null then 'overdue' else 'due_soon' end) = l.list
    and (p.overdue_since is not null or p.escalated_at is not null
         or patch_running_due(p.status, p.verify_due, p.rectify_due) <= :due_by::date)
  order by patch_running_due(p.status, p.verify_due, p.rectify_due), p.code
  limit :per_list::int
) top
order by l.town_code, top.due_on, top.code;
