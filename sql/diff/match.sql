-- Link each candidate of a batch to the earlier patch it shows again, if any:
--  - a patch this batch judged `gone` from its imagery (回头看, sql/lookback/record.sql) → demolition_of:
--    the demolition seen as a change, which becomes no patch (a disappearance is not construction);
--  - an open patch of this or an earlier month → matched_patch_id (a re-detection, no new patch);
--  - otherwise a patch of an earlier month closed after demolition → rebuilt_of (复建: a new
--    patch linked to the demolished one).
-- A candidate matches a patch when their overlap covers at least :match_overlap of the smaller
-- of the two (so a patch that grew or shrank is still matched); a demolition wins over open patches,
-- open patches over demolished ones, then the larger overlap.
-- Parameters:
--   :batch_id       the batch
--   :month          the batch's month (YYYY-MM); patches of later months are ignored
--   :match_overlap  fraction 0..1
update batch_candidate c
set matched_patch_id = case when m.kind = 'open' then m.patch_id end,
    rebuilt_of = case when m.kind = 'demolished' then m.patch_id end,
    demolition_of = case when m.kind = 'gone' then m.patch_id end
from (
  select distinct on (c2.seq) c2.seq, p.id as patch_id,
         case when g.patch_id is not null then 'gone'
              when p.status not in ('dismissed', 'closed', 'legal', 'false_change', 'pre_existing', 'merged', 'split') then 'open'
              else 'demolished' end as kind
  from batch_candidate c2
  join patch p on ST_Intersects(p.geom, c2.geom)
  left join patch_imagery_check g on g.patch_id = p.id and g.batch_id = :batch_id::bigint and g.result = 'gone'
  where c2.batch_id = :batch_id::bigint
    and (
      g.patch_id is not null
      or (p.month <= :month::text and p.status not in ('dismissed', 'closed', 'legal', 'false_change', 'pre_existing', 'merged', 'split'))
      or (p.month < :month::text and p.status = 'closed' and p.measure = 'demolish')
    )
    and overlap_share(p.geom, c2.geom) >= :match_overlap::float8
  order by c2.seq, g.patch_id is not null desc,
           p.status not in ('dismissed', 'closed', 'legal', 'false_change', 'pre_existing', 'merged', 'split') desc,
           ST_Area(ST_Intersection(p.geom, c2.geom)) desc, p.id
) m
where c.batch_id = :batch_id::bigint and c.seq = m.seq;
