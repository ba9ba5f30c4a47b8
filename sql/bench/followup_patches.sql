-- The follow-up benchmark's patches (scripts/bench-followup.ts): how many lie on a change (>= 50 % of
-- their area on the buildings of the kinds that changed, or covering >= 50 % of one), and how many
-- on a registered building that did not change or under a valid permit (false alarms of their own).
-- Parameters:
--   :batch_id, :month   the batch and its month
--   :changed            JSON array of the kinds that are changes
-- Returns one row per patch, in code order.
with patches as (
  select id, code, geom from patch where batch_id = :batch_id::bigint and month = :month::text
),
changed as (
  select geom from bench_truth where kind in (select jsonb_array_elements_text(:changed::jsonb))
),
still as (
  select geom from bench_truth where kind not in (select jsonb_array_elements_text(:changed::jsonb))
),
scored as (
  select p.code,
         coalesce(ST_Area(ST_Intersection(p.geom, (select ST_Union(c.geom) from changed c where ST_Intersects(c.geom, p.geom)))), 0)
           >= 0.5 * ST_Area(p.geom)
         or exists (select 1 from changed c
                    where ST_Intersects(c.geom, p.geom) and ST_Area(ST_Intersection(c.geom, p.geom)) >= 0.5 * ST_Area(c.geom)) as on_change,
         exists (select 1 from still s
                 where ST_Intersects(s.geom, p.geom) and ST_Area(ST_Intersection(s.geom, p.geom)) >= 0.5 * ST_Area(p.geom)) as on_still
  from patches p
)
select code, on_change, on_still and not on_change as on_unchanged
from scored
order by code;
