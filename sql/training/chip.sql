-- Imagery tiles of one month around a patch, with the patch and every verified change patch nearby
-- in the tiles' own CRS (labels are rasterised on the imagery grid).
-- Parameters:
--   :code     patch code
--   :month    imagery month (the patch's month, or its baseline month)
--   :reach_m  how far around the patch the chip can reach (m)
select i.path, i.stretch, i.srid, i.gsd_m,
       ST_AsGeoJSON(ST_Transform(ST_Centroid(p.geom), i.srid), 3)::json as centre,
       ST_AsGeoJSON(ST_Transform(p.geom, i.srid), 3)::json as geom,
       (select coalesce(json_agg(ST_AsGeoJSON(ST_Transform(q.geom, i.srid), 3)::json), '[]'::json)
          from patch q
         where q.verification_result in ('illegal', 'legal')
           and q.status not in ('merged', 'split')
           and ST_DWithin(q.geom, p.geom, :reach_m::float8)) as change_geoms
from patch p
join imagery i on i.month = :month::text and ST_Intersects(i.footprint, ST_Expand(p.geom, :reach_m::float8))
where p.code = :code::text
order by i.path;
