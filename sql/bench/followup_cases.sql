-- The follow-up benchmark's cases (scripts/bench-followup.ts): per kind of case, how many of its
-- buildings (bench_truth rows of that kind: a building, or the part of it that changed) the batch's
-- patches found, and for how many of those the patch that covers most of the building carries the
-- relation the case should have.
--   A building is found when the union of the patches covers >= 50 % of its area (as bench/real_scores).
-- Parameters:
--   :batch_id   the batch whose patches are scored
--   :month      its month (YYYY-MM)
--   :expected   JSON object: kind → the relation a patch on it should carry (null: no patch should be there)
-- Returns one row per kind.
with patches as (
  select id, building_relation, geom from patch where batch_id = :batch_id::bigint and month = :month::text
),
scored as (
  select t.kind,
         coalesce(ST_Area(ST_Intersection(t.geom, (select ST_Union(p.geom) from patches p where ST_Intersects(p.geom, t.geom)))), 0)
           >= 0.5 * ST_Area(t.geom) as found,
         (select p.building_relation from patches p where ST_Intersects(p.geom, t.geom)
          order by ST_Area(ST_Intersection(p.geom, t.geom)) desc, p.id limit 1) as relation
  from bench_truth t
)
select kind, count(*)::int as buildings, (count(*) filter (where found))::int as found,
       (count(*) filter (where found and relation = :expected::jsonb ->> kind))::int as relation_right
from scored
group by kind
order by kind;
