-- 回头看: the patches a batch judges from its imagery, each with the imagery to judge it on.
-- A patch ordered demolished or confiscated is judged while it is rectifying or rectified, and for
-- :months months after it was closed (counted back from the batch's month), by every batch of a
-- later month whose tiles cover it. The reference is the imagery of the month the patch was detected
-- in, when the structure stood: its scene that covers most of the patch is the grid the check is read
-- on. `current` holds the batch's tiles over the patch that were read without failure (none: the
-- check says no_imagery). A reported patch its reporter did not see on its month's imagery (built after it)
-- has no such reference and is not judged: against imagery without the building, standing would read gone.
-- Parameters:
--   :batch_id  the batch
--   :months    how many months after closing a patch is still judged
-- Returns one row per patch, in id order.
with b as (
  select id, month from batch where id = :batch_id::bigint
)
select p.id as patch_id, p.code, p.month as reference_month,
       ref.path as ref_path, ref.file_bytes as ref_file_bytes, ref.etag as ref_etag, ref.stretch as ref_stretch,
       ref.srid as ref_srid,
       case when ref.srid is not null then ST_AsGeoJSON(ST_Transform(p.geom, ref.srid), 3)::json end as geom,
       (select coalesce(json_agg(json_build_object('path', i.path, 'file_bytes', i.file_bytes, 'etag', i.etag, 'stretch', i.stretch) order by i.path), '[]'::json)
          from batch_tile t join imagery i on i.id = t.imagery_id
          where t.batch_id = b.id and t.status = 'vectorized' and ST_Intersects(i.footprint, p.geom)) as current
from patch p
cross join b
left join lateral (
  select i.path, i.file_bytes, i.etag, i.stretch, i.srid
  from imagery i
  where i.month = p.month and ST_Intersects(i.footprint, p.geom)
  order by ST_Area(ST_Intersection(i.footprint, p.geom)) desc, i.path
  limit 1
) ref on true
where p.measure in ('demolish', 'confiscate')
  and (p.source = 'imagery' or p.visible)
  and p.month < b.month
  and (p.status in ('rectifying', 'rectified')
       or (p.status = 'closed' and p.closed_at >= (b.month || '-01')::date - make_interval(months => :months::int)))
  and exists (
    select 1 from batch_tile t join imagery i on i.id = t.imagery_id
    where t.batch_id = b.id and ST_Intersects(i.footprint, p.geom)
  )
order by p.id;
