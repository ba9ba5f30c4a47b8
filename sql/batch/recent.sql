-- Recent batches (or one) with their tile counts by status, newest first.
-- Parameters:
--   :batch_id  one batch, or null for the most recent
--   :limit
select b.id, b.month, b.baseline_month, b.status, b.model_name, b.model_version,
       b.created_at, b.finished_at,
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
