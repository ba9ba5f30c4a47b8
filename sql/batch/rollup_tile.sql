-- A tile's state from its parts: failed when a part failed (with that part's reason), vectorized
-- when every part is, else queued. Windows, polygons and valid pixels are summed.
-- Parameters:
--   :batch_id, :imagery_id
select count(*)::int as parts,
       count(*) filter (where status = 'failed')::int as failed,
       count(*) filter (where status = 'vectorized')::int as vectorized,
       coalesce(sum(windows), 0)::int as windows,
       coalesce(sum(polygons), 0)::int as polygons,
       coalesce(sum(valid_px), 0)::bigint as valid_px,
       (array_agg(error_code order by part) filter (where status = 'failed'))[1] as error_code,
       (array_agg('part ' || part || ' (' || x || ',' || y || ' ' || width || '×' || height || ' px): ' || error_message order by part) filter (where status = 'failed'))[1] as error_message
from batch_part
where batch_id = :batch_id::bigint and imagery_id = :imagery_id::bigint;
