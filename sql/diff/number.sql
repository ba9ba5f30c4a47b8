-- Number a batch's candidates in their final order once every slice of diff/candidates.sql has written its
-- own (with provisional negative seqs): north to south, west to east, the smaller first, from 1. The
-- patches' codes follow this order (diff/emit.sql), so it must not depend on how the batch was sliced.
-- Parameters:
--   :batch_id  the batch
update batch_candidate c
set seq = n.seq
from (
  select seq as provisional,
         row_number() over (order by ST_Y(ST_PointOnSurface(geom)) desc, ST_X(ST_PointOnSurface(geom)), area_m2) as seq
  from batch_candidate
  where batch_id = :batch_id::bigint and seq < 0
) n
where c.batch_id = :batch_id::bigint and c.seq = n.provisional;
