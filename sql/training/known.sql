-- Where a training chip's label is known (a town looked there): every verified patch of the same month and
-- baseline near a patch, of any verdict that makes a label (as in training/verified), grown by :ring_m so the ground just around a
-- confirmed building counts as known "no change". Elsewhere the chip's pixels are unknown: the model the
-- patches came from may have missed a building there, and training does not count them (train.py reads known/).
-- With :quiet_m > 0 (opt-in) the ground at least :quiet_m from every patch of the month — flagged or reported,
-- judged or not — counts as known "no change" too: the running model saw nothing there and no town reported a
-- miss. One geometry (the union), so overlapping pieces are not cancelled by the raster's even-odd fill.
-- Parameters:
--   :code     the patch the chip is cut around
--   :reach_m  how far around it the chip can reach (m)
--   :ring_m   how far around each verified outline the label is known (m)
--   :quiet_m  how far from every patch of the month unjudged ground counts as no change (m; 0: never)
--   :srid     the imagery's CRS
with p as (
  select * from patch where code = :code::text
), judged as (
  select ST_Buffer(q.geom, :ring_m::float8) as geom
  from p
  join patch q on ST_DWithin(q.geom, p.geom, :reach_m::float8)
  where q.month = p.month and q.baseline_month = p.baseline_month
    and patch_is_live(q.status)
    and (q.source = 'imagery' or q.visible)
    and (q.verification_result in ('illegal', 'legal', 'false_change')
         or (q.status = 'dismissed' and q.dismiss_reason in ('cloud', 'shadow', 'vehicle', 'seasonal_crop')))
), quiet as (
  select ST_Difference(
           ST_Buffer(p.geom, :reach_m::float8),
           -- never null: the chip's own patch is among them
           (select ST_Union(ST_Buffer(q.geom, :quiet_m::float8))
            from patch q
            where ST_DWithin(q.geom, p.geom, :reach_m::float8 + :quiet_m::float8)
              -- any baseline: a report is filed against the latest batch's, which may be another
              and q.month = p.month)) as geom
  from p
  where :quiet_m::float8 > 0
), known as (
  select ST_Union(geom) as geom from (select geom from judged union all select geom from quiet) k
)
select coalesce(json_agg(ST_AsGeoJSON(ST_Transform(known.geom, :srid::int), 3)::json), '[]'::json) as geoms
from known
where known.geom is not null and not ST_IsEmpty(known.geom);
