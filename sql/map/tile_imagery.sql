-- Imagery tiles of a month that cover a map tile, in the storage CRS (the map's CRS). For a town
-- user, only where the map tile meets their town grown by :margin_m, with that area (clipped to
-- the tile) to mask the rest; `clip` is null when the whole tile may be shown.
-- Parameters:
--   :month                           YYYY-MM
--   :min_x, :min_y, :max_x, :max_y   map tile bounds in the storage CRS
--   :srid                            the storage CRS (imagery in another CRS is not drawn)
--   :scope_town                      town code of a town user, or null
--   :margin_m                        how far beyond their town a town user sees imagery
--   :preview                         true: the images' low-resolution previews (coarse zoom levels), 8-bit
--                                    already, so no stretch; images without one are left out
with tile as (
  select ST_MakeEnvelope(:min_x::float8, :min_y::float8, :max_x::float8, :max_y::float8, :srid::int) as env
), allowed as (
  select ST_Intersection(ST_Buffer(ST_Union(r.geom), :margin_m::float8), tile.env) as geom
  from reference_feature r, tile
  where :scope_town::text is not null and r.kind = 'town' and r.code = :scope_town::text
    and ST_DWithin(r.geom, tile.env, :margin_m::float8)
  group by tile.env
)
select case when :preview::boolean then i.preview_path else i.path end as path,
       case when :preview::boolean then null else i.stretch end as stretch,
       case when :scope_town::text is null or ST_Covers(a.geom, tile.env) then null
            else ST_AsGeoJSON(a.geom, 3)::json end as clip
from imagery i
cross join tile
left join allowed a on true
where i.month = :month::text
  and i.srid = :srid::int
  and i.footprint && tile.env
  and (not :preview::boolean or i.preview_path is not null)
  and (:scope_town::text is null or (a.geom is not null and not ST_IsEmpty(a.geom)))
order by i.path;
