-- How well a batch's patches match the ground-truth buildings in bench_truth, per image
-- (scripts/bench-real.ts).
--   A building is found when the union of the patches covers >= 50 % of its area.
--   A patch is true when >= 50 % of its area lies on the union of the buildings, or when it alone
--   covers >= 50 % of some building's area.
-- A building counts for the image whose label it was traced from; a patch for the image whose
-- footprint it overlaps most, or for none (image null) when it overlaps no footprint. Shares are
-- ratios of planar areas in :srid (UTM: its scale error, < 0.1 %, is the same on both sides of
-- each ratio); km2 is the footprint's area on the ellipsoid.
-- Parameters:
--   :batch_id    the batch whose patches are scored
--   :month       its month (YYYY-MM)
--   :srid        EPSG code of bench_truth's geometries; patches are transformed to it
--   :footprints  JSON array of {"image": "test_4.png", "bounds": [west, north, east, south]} (degrees, EPSG:4326)
-- Returns one row per image (in no particular order) and one with image null when some patch lies outside every footprint.
with envelope as (
  select f->>'image' as image,
         ST_MakeEnvelope((f->'bounds'->>0)::float8, (f->'bounds'->>3)::float8, (f->'bounds'->>2)::float8, (f->'bounds'->>1)::float8, 4326) as geom
  from json_array_elements(:footprints::json) f
),
footprint as (
  -- segmentized first, so the edges follow the meridians and parallels after the transform
  select image, ST_Transform(ST_Segmentize(geom, 0.0001), :srid::int) as geom, ST_Area(geom::geography) / 1e6 as km2
  from envelope
),
patches as (
  select id, ST_Transform(case when ST_IsValid(geom) then geom else ST_MakeValid(geom) end, :srid::int) as geom
  from patch
  where batch_id = :batch_id::bigint and month = :month::text
),
buildings as (
  select t.image,
         coalesce(ST_Area(ST_Intersection(t.geom, (select ST_Union(p.geom) from patches p where ST_Intersects(p.geom, t.geom)))), 0)
           >= 0.5 * ST_Area(t.geom) as found
  from bench_truth t
),
scored as (
  select (select f.image from footprint f where ST_Intersects(f.geom, p.geom)
          order by ST_Area(ST_Intersection(f.geom, p.geom)) desc, f.image limit 1) as image,
         coalesce(ST_Area(ST_Intersection(p.geom, (select ST_Union(t.geom) from bench_truth t where ST_Intersects(t.geom, p.geom)))), 0)
           >= 0.5 * ST_Area(p.geom)
         or exists (select 1 from bench_truth t
                    where ST_Intersects(t.geom, p.geom) and ST_Area(ST_Intersection(t.geom, p.geom)) >= 0.5 * ST_Area(t.geom)) as on_building
  from patches p
),
per_building as (
  select image, count(*)::int as buildings, (count(*) filter (where found))::int as found from buildings group by image
),
per_patch as (
  select image, count(*)::int as patches, (count(*) filter (where on_building))::int as true_patches from scored group by image
)
select coalesce(f.image, pp.image) as image, coalesce(f.km2, 0)::float8 as km2,
       coalesce(pb.buildings, 0) as buildings, coalesce(pb.found, 0) as found,
       coalesce(pp.patches, 0) as patches, coalesce(pp.true_patches, 0) as true_patches
from footprint f
full join per_patch pp on pp.image = f.image
left join per_building pb on pb.image = f.image;
