-- A user's to-do list: every live patch in a state that waits on their role, across months, the
-- running deadline first (patches with none after), oldest month first; one page of it.
-- Parameters:
--   :states      the states that wait on the user's role, as a PostgreSQL array literal ({dispatched,rectifying})
--   :scope_town  town code of a town user, or null
--   :limit, :offset
--   :after_due, :after_month, :after_code  the last patch of the page before (its running deadline, or
--                null for none, its month and code): only the patches after it in this order, read from
--                there rather than counted past; :after_code null for the first page
select p.code, p.month, p.town_code, p.town_name, p.status, p.class,
       round(p.area_m2::numeric, 1)::float8 as area_m2,
       to_char(patch_running_due(p.status, p.verify_due, p.rectify_due), 'YYYY-MM-DD') as due,
       case p.status when 'dispatched' then 'verification' when 'rectifying' then 'rectification' end as deadline,
       to_char(p.overdue_since, 'YYYY-MM-DD') as overdue_since, p.escalated_at is not null as escalated
from patch p
/*include workflow/todo_filter*/
  and (:after_code::text is null
       or case when :after_due::date is null
               then patch_running_due(p.status, p.verify_due, p.rectify_due) is null
                    and (p.month, p.code) > (:after_month::text, :after_code::text)
               else patch_running_due(p.status, p.verify_due, p.rectify_due) > :after_due::date
                    or (patch_running_due(p.status, p.verify_due, p.rectify_due) = :after_due::date
                        and (p.month, p.code) > (:after_month::text, :after_code::text))
                    or patch_running_due(p.status, p.verify_due, p.rectify_due) is null
          end)
order by patch_running_due(p.status, p.verify_due, p.rectify_due) nulls last, p.month, p.code
limit :limit::int offset :offset::int;
