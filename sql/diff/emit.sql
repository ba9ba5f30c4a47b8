-- Turn one district's unmatched candidates of a batch into new patches with stable codes, and record every
-- candidate as an observation (new or re-detected) plus one history event each. A candidate
-- with rebuilt_of set (see match.sql) becomes a patch linked to the demolished one (复建); one with
-- demolition_of set is the demolition itself and becomes nothing.
-- Codes: <district>-<YYYYMM>-<seq, at least 4 digits> (patch_code, migration 021); seq continues after the highest already used for
-- that district and month, in the candidates' deterministic order (north to south, west to east).
-- Parameters:
--   :batch_id  the batch
--   :district_code  the district whose candidates are written (each in a transaction of its own)
--   :month     YYYY-MM
--   :actor     who emitted (written into the history)
with used as (
  -- the highest sequence the district has used this month, read once (not once per candidate)
  select coalesce(max(seq), 0) as seq from patch where month = :month::text and district_code = :district_code::text
),
fresh as (
  select c.*, u.seq + row_number() over (order by c.seq) as patch_seq
  from batch_candidate c
  cross join used u
  where c.batch_id = :batch_id::bigint and c.district_code = :district_code::text
    and c.matched_patch_id is null and c.demolition_of is null
),
inserted as (
  insert into patch (code, month, seq, batch_id, baseline_month, district_code, town_code, town_name, grid_code, grid_name,
                     area_m2, farmland_m2, ecological_m2, water_m2, mean_prob, source_tiles, model_name, model_version, status, geom, centroid,
                     class, rebuilt_of, regularised, raw_area_m2, building_relation, registered_building_m2, extension_m2)
  select patch_code(f.district_code, :month::text, f.patch_seq),
         :month::text, f.patch_seq, :batch_id::bigint, b.baseline_month, f.district_code, f.town_code, f.town_name, f.grid_code, f.grid_name,
         f.area_m2, f.farmland_m2, f.ecological_m2, f.water_m2, f.mean_prob, f.source_tiles, b.model_name, b.model_version,
         'detected', f.geom, ST_PointOnSurface(f.geom),
         patch_class(f.farmland_m2, f.ecological_m2, f.water_m2),
         f.rebuilt_of, f.regularised, f.raw_area_m2, f.building_relation, f.registered_building_m2, f.extension_m2
  from fresh f join batch b on b.id = :batch_id::bigint
  order by f.seq
  returning id, code, geom, area_m2, mean_prob, rebuilt_of
),
observed as (
  insert into patch_observation (patch_id, batch_id, month, kind, area_m2, mean_prob, geom)
  select id, :batch_id::bigint, :month::text, 'new', area_m2, mean_prob, geom from inserted
  union all
  select c.matched_patch_id, :batch_id::bigint, :month::text, 'redetected', c.area_m2, c.mean_prob, c.geom
  from batch_candidate c
  where c.batch_id = :batch_id::bigint and c.district_code = :district_code::text and c.matched_patch_id is not null
  -- in patch order: districts written at once that re-detect one patch take its row in the same order
  order by 1
  on conflict (patch_id, batch_id) do nothing
  returning patch_id, kind
)
insert into patch_event (patch_id, actor, type, from_status, to_status, detail)
select o.patch_id, :actor::text,
       case when o.kind = 'redetected' then 'redetected' when i.rebuilt_of is not null then 'rebuilt' else 'detected' end,
       null, case when o.kind = 'new' then 'detected' else null end,
       jsonb_build_object('batch_id', :batch_id::bigint, 'month', :month::text)
         || case when i.rebuilt_of is not null then jsonb_build_object('rebuilt_of', (select code from patch where id = i.rebuilt_of)) else '{}'::jsonb end
from observed o left join inserted i on i.id = o.patch_id
order by o.patch_id;
