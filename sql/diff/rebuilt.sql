-- Candidates of a batch that overlap a patch closed after demolition (and no open patch) are
-- rebuilt construction (复建): they will become new patches linked to the closed one.
-- Parameters:
--   :batch_id       the batch
--   :month          the batch's month
--   :match_overlap  fraction 0..1 of the smaller area that must overlap
update batch_candidate c
set rebuilt_of = m.patch_id
from (
  select distinct on (c2.seq) c2.seq, p.id as patch_id
  from batch_candidate c2
  join patch p on ST_Intersects(p.geom, c2.geom)
  where c2.batch_id = :batch_id::bigint and c2.matched_patch_id is null
    and p.status = 'closed' and p.measure = 'demolish' and p.month < :month::text
    and ST_Area(ST_Intersection(p.geom, c2.geom)) >= :match_overlap::float8 * least(ST_Area(p.geom), ST_Area(c2.geom))
  order by c2.seq, ST_Area(ST_Intersection(p.geom, c2.geom)) desc, p.id
) m
where c.batch_id = :batch_id::bigint and c.seq = m.seq;
