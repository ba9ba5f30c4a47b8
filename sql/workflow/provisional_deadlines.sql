-- Open patches whose running deadline lies past a date (the calendar's last covered day), with the day
-- their deadline's count started: the latest dispatch (verification) or rectify (rectification) event,
-- as a date in the city's time zone. For recounting them on a calendar that now covers their year.
-- Parameters:
--   :after     YYYY-MM-DD: deadlines later than this
--   :offset_h  the city's UTC offset in hours
select p.id, p.code, p.status,
       case when p.status = 'dispatched' then 'verify_due' else 'rectify_due' end as field,
       to_char(patch_running_due(p.status, p.verify_due, p.rectify_due), 'YYYY-MM-DD') as due,
       to_char(p.overdue_since, 'YYYY-MM-DD') as overdue_since,
       (select to_char((e.at at time zone 'UTC') + make_interval(mins => round(:offset_h::float8 * 60)::int), 'YYYY-MM-DD')
          from patch_event e
         where e.patch_id = p.id and e.type = case when p.status = 'dispatched' then 'dispatch' else 'rectify' end
         order by e.id desc limit 1) as started
from patch p
where p.status in ('dispatched', 'rectifying')
  and patch_running_due(p.status, p.verify_due, p.rectify_due) > :after::date
order by p.id;
