-- Recent batches (or one) with their tile counts by status, newest first.
-- Parameters:
--   :batch_id  one batch, or null for the most recent
--   :limit
--   :utc_offset_h  the city's offset: times are its local time, ISO 8601 with the offset
--   :offset_suffix the offset as written after the time, e.g. +08:00
select b.id, b.month, b.baseline_month, b.status, b.model_name, b.model_version,
       to_char((b.created_at at time zone 'UTC') + :utc_offset_h::float8 * interval '1 hour', 'YYYY-MM-DD"T"HH24:MI:SS') || :offset_suffix::text as created_at,
       to_char((b.finished_at at time zone 'UTC') + :utc_offset_h::float8 * interval '1 hour', 'YYYY-MM-DD"T"HH24:MI:SS') || :offset_suffix::text as finished_at,
       count(t.*)::int as tiles,
       count(t.*) filter (where t.status = 'queued')::int as queued,
       count(t.*) filter (where t.status = 'vectorized')::int as vectorized,
       count(t.*) filter (where t.status = 'failed')::int as failed,
       b.summary -> 'patches' as patches
from batch b
left join batch_tile t on t.batch_id = b.id
where (:batch_id::bigint is null or b.id = :batch_id::bigint)
group by b.id
order by b.id desc
limit :limit::int;
