-- Link each candidate of a batch to the open patch it re-detects, if any.
-- A candidate re-detects a patch of this or an earlier month when their overlap covers at least
-- :match_overlap of the smaller of the two (so a patch that grew or shrank is still matched).
-- Parameters:
--   :batch_id       the batch
--   :month          the batch's month (YYYY-MM); patches of later months are ignored
--   :match_overlap  fraction 0..1
update batch_candidate c
set matched_patch_id = m.patch_id
from (
  select distinct on (c2.seq) c2.seq, p.id as patch_id
  from batch_candidate c2
  join patch p on ST_Intersects(p.geom, c2.geom)
  where c2.batch_id = :batch_id::bigint
    and p.month <= :month::text
    and p.status not in ('dismissed', 'closed', 'legal', 'false_change', 'pre_existing', 'merged', 'split')
    and ST_Area(ST_Intersection(p.geom, c2.geom)) >= :match_overlap::float8 * least(ST_Area(p.geom), ST_Area(c2.geom))
  order by c2.seq, ST_Area(ST_Intersection(p.geom, c2.geom)) desc, p.id
) m
where c.batch_id = :batch_id::bigint and c.seq = m.seq;
