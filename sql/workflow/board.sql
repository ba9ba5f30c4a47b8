-- Supervisor board: running deadlines due by :due_by, overdue and escalated patches, per town.
-- Parameters:
--   :today       YYYY-MM-DD
--   :due_by      YYYY-MM-DD, the last day of the window (N working days from today)
--   :scope_town  town code of a town user, or null
select p.code, p.town_code, p.town_name, p.status, p.class,
       to_char(patch_running_due(p.status, p.verify_due, p.rectify_due), 'YYYY-MM-DD') as due,
       case when p.status = 'dispatched' then 'verification' else 'rectification' end as deadline,
       p.overdue_since is not null as overdue, p.escalated_at is not null as escalated
from patch p
where p.status in ('dispatched', 'rectifying')
  and (:scope_town::text is null or p.town_code = :scope_town::text)
  and (p.overdue_since is not null or p.escalated_at is not null
       or patch_running_due(p.status, p.verify_due, p.rectify_due) <= :due_by::date)
order by p.town_code, due, p.code;
