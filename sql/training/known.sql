-- Where a training chip's label is known (a town looked there): every verified patch of the same month and
-- baseline near a patch, of any verdict that makes a label (as in training/verified), grown by :ring_m so the ground just around a
-- confirmed building counts as known "no change". Elsewhere the chip's pixels are unknown: the model the
-- patches came from may have missed a building there, and training does not count them (train.py reads known/).
-- Parameters:
--   :code     the patch the chip is cut around
--   :reach_m  how far around it the chip can reach (m)
--   :ring_m   how far around each verified outline the label is known (m)
--   :srid     the imagery's CRS
select coalesce(json_agg(ST_AsGeoJSON(ST_Transform(ST_Buffer(q.geom, :ring_m::float8), :srid::int), 3)::json), '[]'::json) as geoms
from patch p
join patch q on ST_DWithin(q.geom, p.geom, :reach_m::float8)
where p.code = :code::text
  and q.month = p.month and q.baseline_month = p.baseline_month
  and patch_is_live(q.status)
  and (q.source = 'imagery' or q.visible)
  and (q.verification_result in ('illegal', 'legal', 'false_change')
       or (q.status = 'dismissed' and q.dismiss_reason in ('cloud', 'shadow', 'vehicle', 'seasonal_crop')));
