-- Per-town counts of one batch: new patches, re-detections and new area.
-- Parameters:
--   :batch_id  the batch
select coalesce(p.town_code, '') as town_code, coalesce(p.town_name, '(outside every town)') as town_name,
       count(*) filter (where o.kind = 'new') as new_patches,
       count(*) filter (where o.kind = 'redetected') as redetected,
       coalesce(round(sum(o.area_m2) filter (where o.kind = 'new')::numeric, 1), 0)::float8 as new_area_m2
from patch_observation o join patch p on p.id = o.patch_id
where o.batch_id = :batch_id::bigint
group by 1, 2
order by 1;
