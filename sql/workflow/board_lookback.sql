-- Supervisor board, 回头看: ordered demolitions whose latest imagery check disagrees with what the
-- town has reported —
--   报告已整改但影像仍在: reported rectified (or closed), the imagery shows the structure standing; a
--     closed patch leaves the list once a supervisor closed it with a reason against that same check;
--   影像显示已拆除、待上报: still rectifying, the imagery shows the structure gone.
-- Parameters:
--   :scope_town  town code of a town user, or null
select p.code, p.town_code, p.town_name, p.status, p.measure, p.imagery_check
from patch p
where p.imagery_check is not null
  and (:scope_town::text is null or p.town_code = :scope_town::text)
  and (
    (p.status = 'rectifying' and p.imagery_check->>'result' = 'gone')
    or (p.status = 'rectified' and p.imagery_check->>'result' = 'standing')
    or (p.status = 'closed' and p.imagery_check->>'result' = 'standing'
        and not exists (
          select 1 from patch_event e
          where e.patch_id = p.id and e.type = 'close'
            and e.detail->'imagery_check'->>'month' = p.imagery_check->>'month'
            and e.detail->'imagery_check'->>'result' = 'standing'
        ))
  )
order by p.town_code, p.code;
