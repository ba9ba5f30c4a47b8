-- Everything a part job reads before it starts, in one round trip: the tile's and the batch's
-- status, the batch's parameters and model, the part's window, and the current and baseline imagery (the
-- baselines ordered by path). No row: the batch has no such tile; null window: no such part.
-- Parameters:
--   :batch_id, :imagery_id, :part
select t.status as tile_status,
       b.status as batch_status,
       b.params, b.model_name, b.model_version,
       p.x, p.y, p.width, p.height,
       i.path, i.file_bytes, i.etag, i.stretch, i.geotransform, i.srid,
       (select coalesce(json_agg(json_build_object('id', bi.id, 'path', bi.path, 'file_bytes', bi.file_bytes, 'etag', bi.etag, 'stretch', bi.stretch) order by bi.path), '[]'::json)
          from imagery bi where bi.id = any (t.baseline_ids)) as baselines
from batch_tile t
join batch b on b.id = t.batch_id
join imagery i on i.id = t.imagery_id
left join batch_part p on p.batch_id = t.batch_id and p.imagery_id = t.imagery_id and p.part = :part::int
where t.batch_id = :batch_id::bigint and t.imagery_id = :imagery_id::bigint;
