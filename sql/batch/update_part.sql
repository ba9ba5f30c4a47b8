-- Records a part job's outcome (the first of two statements in the caller's transaction; then
-- rollup_tile.sql). The tile's row is locked first and stays locked until the transaction ends, so
-- parts of one tile that finish at once roll up one after the other, each rollup taking its
-- snapshot after the lock and so seeing every part committed before it. Fields left null keep
-- their value.
-- Parameters:
--   :batch_id, :imagery_id, :part, :status
--   :error_code, :error_message, :windows, :polygons, :valid_px  (null: unchanged)
--   :timings  JSON object of stage → ms, merged into the part's
with tile as (
  select status from batch_tile
  where batch_id = :batch_id::bigint and imagery_id = :imagery_id::bigint
  for update
), part as (
  update batch_part
  set status = :status,
      error_code = coalesce(:error_code::text, error_code),
      error_message = coalesce(:error_message::text, error_message),
      windows = coalesce(:windows::int, windows),
      polygons = coalesce(:polygons::int, polygons),
      valid_px = coalesce(:valid_px::bigint, valid_px),
      timings = timings || :timings::jsonb,
      updated_at = now()
  where batch_id = :batch_id::bigint and imagery_id = :imagery_id::bigint and part = :part::int
    and exists (select 1 from tile)
  returning 1
)
select (select status from tile) as tile_status, (select count(*) from part)::int as parts;
