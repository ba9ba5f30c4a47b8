-- Verified change patches of the same month and baseline near a patch, in a CRS given (a training chip's
-- label is rasterised from them on the imagery grid). A building confirmed in another month stands on both of
-- this chip's dates (or on neither): no change here.
-- Parameters:
--   :code     the patch the chip is cut around
--   :reach_m  how far around it the chip can reach (m)
--   :srid     the imagery's CRS
select coalesce(json_agg(ST_AsGeoJSON(ST_Transform(q.geom, :srid::int), 3)::json), '[]'::json) as geoms
from patch p
join patch q on ST_DWithin(q.geom, p.geom, :reach_m::float8)
where p.code = :code::text
  and q.month = p.month and q.baseline_month = p.baseline_month
  and q.verification_result in ('illegal', 'legal')
  and patch_is_live(q.status)
  and (q.source = 'imagery' or q.visible);
