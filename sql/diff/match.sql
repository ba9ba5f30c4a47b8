-- Link each candidate of a batch to the earlier patch it shows again, if any:
--  - an open patch of this or an earlier month → matched_patch_id (a re-detection, no new patch);
--  - otherwise a patch of an earlier month closed after demolition → rebuilt_of (复建: a new
--    patch linked to the demolished one).
-- A candidate matches a patch when their overlap covers at least :match_overlap of the smaller
-- of the two (so a patch that grew or shrank is still matched); open patches win over demolished
-- ones, then the larger overlap.
-- Parameters:
--   :batch_id       the batch
--   :month          the batch's month (YYYY-MM); patches of later months are ignored
--   :match_overlap  fraction 0..1
update batch_candidate c
set matched_patch_id = case when m.open then m.patch_id end,
    rebuilt_of = case when m.open then null else m.patch_id end
from (
  select distinct on (c2.seq) c2.seq, p.id as patch_id,
         p.status not in ('dismissed', 'closed', 'legal', 'false_change', 'pre_existing', 'merged', 'split') as open
  from batch_candidate c2
  join patch p on ST_Intersects(p.geom, c2.geom)
  where c2.batch_id = :batch_id::bigint
    and (
      (p.month <= :month::text and p.status not in ('dismissed', 'closed', 'legal', 'false_change', 'pre_existing', 'merged', 'split'))
      or (p.month < :month::text and p.status = 'closed' and p.measure = 'demolish')
    )
    and overlap_share(p.geom, c2.geom) >= :match_overlap::float8
  order by c2.seq, open desc, ST_Area(ST_Intersection(p.geom, c2.geom)) desc, p.id
) m
where c.batch_id = :batch_id::bigint and c.seq = m.seq;
