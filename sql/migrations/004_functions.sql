-- Shared SQL building blocks used by the diff and by patch splitting.
-- Template parameters: {{srid}} (unused here).

-- True area in m² (on the ellipsoid) of a geometry's overlap with one kind of reference layer
-- (farmland, ecological, water, …); overlapping features of that kind are unioned first.
create function zone_overlap_m2(layer_kind text, g geometry) returns double precision
language sql stable as $$
  select coalesce(ST_Area(ST_Transform(ST_Intersection(ST_Union(f.geom), g), 4326)::geography), 0)
  from reference_feature f
  where f.kind = layer_kind and ST_Intersects(f.geom, g)
$$;

-- Deadline class of a patch from its zone overlaps: protected zones first.
create function patch_class(farmland_m2 double precision, ecological_m2 double precision, water_m2 double precision) returns text
language sql immutable as $$
  select case when ecological_m2 > 0 then 'ecological' when farmland_m2 > 0 then 'farmland' when water_m2 > 0 then 'water' else 'general' end
$$;

-- Share of the smaller of two geometries that their overlap covers (0..1): how re-detections
-- and rebuilt construction are matched to earlier patches.
create function overlap_share(a geometry, b geometry) returns double precision
language sql immutable as $$
  select ST_Area(ST_Intersection(a, b)) / nullif(least(ST_Area(a), ST_Area(b)), 0)
$$;
