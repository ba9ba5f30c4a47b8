-- Diff one batch's change polygons against the legal footprints and attribute what remains.
-- Only a permit valid on the imagery date makes a change legal. A registered building is evidence,
-- not legality: a change on or against one stays a candidate and says how it relates to the register
-- (building_relation: `new` when no registered building meets it — none within :touch_m —, `on_building`
-- when at least :on_building_share of it lies inside registered footprints — rebuilt, raised, built on
-- top —, else `extension`), with its overlap with the footprints and its area outside them.
-- Parameters:
--   :batch_id         batch whose change_polygon rows are diffed
--   :imagery_date     date the permits must be valid on (date)
--   :legal_buffer_m   permits (and, with the subtract policy, buildings) are grown by this much before
--                     subtraction (misregistration, m); a building this close to a change is its neighbour
--   :building_policy  'classify' (default) keeps changes on registered buildings and classes them;
--                     'subtract' erases them like permits (the behaviour before)
--   :on_building_share  share of a candidate's area inside registered footprints from which it is `on_building`
--   :touch_m          how close a registered building must come to meet a candidate (m): a detected
--                     outline reaches a pixel or two beyond the roof (its shadow, the blur), so the legal
--                     buffer would class a new house beside a registered one as its extension
--   :opening_m        morphological opening radius that removes slivers left by the subtraction (m); the
--                     change masks were opened by the same radius before tracing (workers/jobs.ts), so only
--                     clusters that legal footprints cut are buffered here
--   :seam_eps_m       pieces closer than this are one object (tile and part seams, m)
--   :min_area_m2      residual parts smaller than this are dropped (m²)
--   :min_mean_prob    objects whose area-weighted mean change probability is lower are dropped (0: none)
--   :min_mean_prob_extension, :min_mean_prob_on_building  the same floor for candidates of those relations
--                     (roofs bring false alarms of their own: repainting, shadows, the lean of tall buildings)
--   :simplify_m       Douglas–Peucker tolerance applied after merging (m); 0 keeps pixel outlines
--   :default_district district code for a patch outside every town
--   :slices, :slice   this statement writes only the objects whose cluster number falls to :slice of :slices
--                     (0-based): the batch's slices run at once on connections of their own, each the same
--                     traced and merged pieces; each candidate gets a provisional negative seq, and
--                     diff/number.sql numbers the batch's candidates in their final order once all are in
-- Areas are true m² on the ellipsoid (geography), whatever the storage CRS.
-- Each outline is computed once (`kept` is materialised: inlined, its simplification was recomputed
-- at each of the dozen places that read the outline), and every probe of a reference layer names its
-- kind, so it reads that kind's own spatial index (migration 026).
insert into batch_candidate (batch_id, seq, geom, area_m2, mean_prob, source_tiles, district_code, town_code, town_name, grid_code, grid_name, farmland_m2, ecological_m2, water_m2,
                             building_relation, registered_building_m2, extension_m2)
with traced as materialized (
  select cp.imagery_id, cp.part, cp.seq, cp.geom, cp.area_m2, cp.mean_prob, i.path,
         -- only a piece within eps of a piece of another part or scene can be part of a larger object:
         -- within one part, tracing leaves pieces at least a pixel apart (8-connected, split lines a pixel wide)
         exists (
           select 1 from change_polygon o
           where o.batch_id = cp.batch_id and (o.imagery_id, o.part) <> (cp.imagery_id, cp.part)
             and ST_DWithin(o.geom, cp.geom, :seam_eps_m::float8)
         ) as at_seam
  from change_polygon cp
  join imagery i on i.id = cp.imagery_id
  -- parts of a tile that failed elsewhere are left out with the tile (it is retried whole)
  join batch_tile bt on bt.batch_id = cp.batch_id and bt.imagery_id = cp.imagery_id and bt.status = 'vectorized'
  where cp.batch_id = :batch_id::bigint
),
seam_clusters as (
  select imagery_id, part, seq,
         ST_ClusterDBSCAN(geom, eps := :seam_eps_m::float8, minpoints := 1) over (order by imagery_id, part, seq) as c
  from traced where at_seam
),
pieces as (
  -- clusters: the seam pieces' (negative), every other piece one of its own
  select t.geom, t.area_m2, t.mean_prob, t.path,
         coalesce(-1 - s.c, row_number() over (order by t.imagery_id, t.part, t.seq)) as cluster
  from traced t
  left join seam_clusters s using (imagery_id, part, seq)
),
merged as (
  -- this slice's objects only (a seam cluster is negative, every other piece positive)
  select cluster,
         ST_UnaryUnion(ST_Collect(geom)) as geom,
         sum(area_m2 * coalesce(mean_prob, 0)) / nullif(sum(area_m2), 0) as mean_prob,
         array_agg(distinct path order by path) as source_tiles
  from pieces
  where mod(abs(cluster), :slices::int) = :slice::int
  group by cluster
),
residual as (
  select m.cluster, m.mean_prob, m.source_tiles,
         case when legal.geom is null then m.geom
              else ST_Buffer(ST_Buffer(ST_Difference(m.geom, legal.geom), -:opening_m::float8, 'join=mitre'),
                             :opening_m::float8, 'join=mitre') end as geom
  from merged m
  cross join lateral (
    select ST_Union(ST_Buffer(f.geom, :legal_buffer_m::float8, 'join=mitre')) as geom
    from reference_feature f
    where ST_DWithin(f.geom, m.geom, :legal_buffer_m::float8)
      and ((f.kind = 'permit'
            and (f.valid_from is null or f.valid_from <= :imagery_date::date) and (f.valid_to is null or f.valid_to >= :imagery_date::date))
           -- registered buildings only under the subtract policy (the test is a constant: with `classify`
           -- the planner drops this branch, and 2 M buildings are not probed for nothing)
           or (f.kind = 'building' and :building_policy::text = 'subtract'))
  ) legal
  -- the lowest of the floors here; each relation's own once the relation is known (classed)
  where coalesce(m.mean_prob, 0) >= least(:min_mean_prob::float8, :min_mean_prob_extension::float8, :min_mean_prob_on_building::float8)
),
parts as (
  select r.mean_prob, r.source_tiles, d.geom
  from residual r, lateral ST_Dump(r.geom) d
  where not ST_IsEmpty(d.geom)
),
kept as materialized (
  select mean_prob, source_tiles,
         -- normalised first: Douglas–Peucker's result depends on where a ring starts, and the same outline
         -- must simplify the same whether it was traced whole or merged from pieces across part seams
         ST_Multi(case when :simplify_m::float8 > 0 then ST_SimplifyPreserveTopology(ST_Normalize(geom), :simplify_m::float8) else geom end) as geom
  from parts
  where ST_Area(ST_Transform(geom, 4326)::geography) >= :min_area_m2::float8
),
measured as materialized (
  -- materialised: the overlap with the footprints is read by the relation, its floor and the output
  select k.*, ST_Area(ST_Transform(k.geom, 4326)::geography) as area_m2,
         reg.near as near_building,
         -- the overlap with the footprints themselves, not grown (as zone_overlap_m2('building', …))
         case when reg.near then coalesce(ST_Area(ST_Transform(ST_Intersection(reg.footprints, k.geom), 4326)::geography), 0)
              else 0 end as registered_building_m2
  from kept k
  cross join lateral (
    -- one probe of the buildings for both: is one within :touch_m, and the union of those it overlaps
    select count(*) > 0 as near, ST_Union(b.geom) filter (where ST_Intersects(b.geom, k.geom)) as footprints
    from reference_feature b
    where b.kind = 'building' and ST_DWithin(b.geom, k.geom, :touch_m::float8)
  ) reg
),
classed as (
  select * from (
    select m.*,
           case when not m.near_building then 'new'
                when m.registered_building_m2 >= :on_building_share::float8 * m.area_m2 then 'on_building'
                else 'extension' end as building_relation
    from measured m
  ) c
  where coalesce(c.mean_prob, 0) >= case c.building_relation
                                      when 'extension' then :min_mean_prob_extension::float8
                                      when 'on_building' then :min_mean_prob_on_building::float8
                                      else :min_mean_prob::float8 end
),
attributed as (
  select k.*,
         town.code as town_code, town.name as town_name, town.district_code,
         grid.code as grid_code, grid.name as grid_name,
         -- the zone overlaps only for a patch with a zone feature near it (the others are 0 without a call)
         case when zone.near then zone_overlap_m2('farmland', k.geom) else 0 end as farmland_m2,
         case when zone.near then zone_overlap_m2('ecological', k.geom) else 0 end as ecological_m2,
         case when zone.near then zone_overlap_m2('water', k.geom) else 0 end as water_m2
  from classed k
  -- the town (grid) with the larger share of the patch; the shares are computed only when the patch
  -- meets more than one (a window count is known before the order is)
  left join lateral (
    select t.code, t.name, t.district_code from reference_feature t
    where t.kind = 'town' and ST_Intersects(t.geom, k.geom)
    order by case when count(*) over () > 1 then ST_Area(ST_Intersection(t.geom, k.geom)) end desc, t.code limit 1
  ) town on true
  left join lateral (
    select g.code, g.name from reference_feature g
    where g.kind = 'grid' and ST_Intersects(g.geom, k.geom)
    order by case when count(*) over () > 1 then ST_Area(ST_Intersection(g.geom, k.geom)) end desc, g.code limit 1
  ) grid on true
  cross join lateral (
    select exists (
      select 1 from reference_feature f
      where f.kind in ('farmland', 'ecological', 'water') and f.geom && k.geom
    ) as near
    offset 0 -- evaluated once per candidate, not once per reference to `near`
  ) zone
)
-- provisional and unique across slices: diff/number.sql gives the final order (north to south, west to east)
select :batch_id::bigint, -(:slices::int * row_number() over () + :slice::int),
       geom, area_m2, mean_prob, source_tiles, coalesce(district_code, :default_district::text),
       town_code, town_name, grid_code, grid_name,
       coalesce(farmland_m2, 0), coalesce(ecological_m2, 0), coalesce(water_m2, 0),
       building_relation, registered_building_m2, greatest(area_m2 - registered_building_m2, 0)
from attributed;
