-- A tile's state from its parts, written to the tile (after update_part.sql, in its transaction):
-- failed when a part failed (with the first failed part's reason, prefixed with the part when
-- the tile has several), failed as all_nodata when every part is done but no pixel had data in
-- both months, vectorized when every part is, else unchanged. Windows and polygons are summed
-- over the parts; the part's stage timings are added to the tile's. A tile already failed is
-- left as it is and no row comes back.
-- Parameters:
--   :batch_id, :imagery_id
--   :timings  JSON object of stage → ms, added key by key to the tile's
with r as (
  select count(*)::int as parts,
         count(*) filter (where status = 'failed')::int as failed,
         count(*) filter (where status = 'vectorized')::int as vectorized,
         coalesce(sum(windows), 0)::int as windows,
         coalesce(sum(polygons), 0)::int as polygons,
         coalesce(sum(valid_px), 0)::bigint as valid_px,
         (array_agg(error_code order by part) filter (where status = 'failed'))[1] as error_code,
         (array_agg(error_message order by part) filter (where status = 'failed'))[1] as error_message,
         (array_agg('part ' || part || ' (' || x || ',' || y || ' ' || width || '×' || height || ' px): ' order by part) filter (where status = 'failed'))[1] as failed_part
  from batch_part
  where batch_id = :batch_id::bigint and imagery_id = :imagery_id::bigint
), next as (
  select case when r.failed > 0 then 'failed'
              when r.vectorized = r.parts and r.valid_px = 0 then 'failed'
              when r.vectorized = r.parts then 'vectorized' end as status,
         case when r.failed > 0 then r.error_code else 'all_nodata' end as error_code,
         case when r.failed > 0 then (case when r.parts > 1 then r.failed_part else '' end) || r.error_message
              else i.path || ': no pixel has data in both months (all nodata, NaN, or outside the baseline)' end as error_message,
         r.failed = 0 and r.vectorized = r.parts and r.valid_px > 0 as done,
         r.windows, r.polygons
  from r, imagery i
  where i.id = :imagery_id::bigint
)
update batch_tile t
set status = coalesce(n.status, t.status),
    error_code = case when n.status = 'failed' then n.error_code else t.error_code end,
    error_message = case when n.status = 'failed' then n.error_message else t.error_message end,
    windows = case when n.done then n.windows else t.windows end,
    polygons = case when n.done then n.polygons else t.polygons end,
    timings = (select coalesce(jsonb_object_agg(k, round(coalesce((t.timings ->> k)::numeric, 0) + coalesce((:timings::jsonb ->> k)::numeric, 0), 1)), '{}'::jsonb)
               from (select jsonb_object_keys(t.timings) union select jsonb_object_keys(:timings::jsonb)) as keys (k)),
    updated_at = now()
from next n
where t.batch_id = :batch_id::bigint and t.imagery_id = :imagery_id::bigint and t.status <> 'failed'
returning t.status;
