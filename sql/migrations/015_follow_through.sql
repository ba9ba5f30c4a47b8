-- The follow-through from imagery (issue 28).
-- Template parameters: {{srid}} (unused here).
--
-- 1. A registered building is evidence, not legality: a change on or against one stays a patch and
--    says how it relates to the register. Patches stored before this read as `new`, all of their
--    area outside any registered building.
alter table batch_candidate
  add column building_relation text not null default 'new' check (building_relation in ('new', 'extension', 'on_building')),
  add column registered_building_m2 double precision not null default 0,
  add column extension_m2 double precision;
alter table patch
  add column building_relation text not null default 'new' check (building_relation in ('new', 'extension', 'on_building')),
  add column registered_building_m2 double precision not null default 0,
  add column extension_m2 double precision;
update patch set extension_m2 = area_m2;
alter table patch alter column extension_m2 set not null;
create index patch_month_relation_idx on patch (month, building_relation);

-- 2. 回头看: each later batch whose imagery covers an ordered demolition (or confiscation) judges
--    whether the structure still stands. One row per patch and batch; the latest is copied onto the
--    patch (imagery_check) for lists, exports and the board, and each judgement is a patch event.
create table patch_imagery_check (
  patch_id bigint not null references patch (id),
  batch_id bigint not null references batch (id),
  month text not null,
  result text not null check (result in ('gone', 'standing', 'unclear', 'no_imagery')),
  score double precision,
  valid_share double precision,
  model_name text not null,
  model_version text not null,
  checked_at timestamptz not null default now(),
  primary key (patch_id, batch_id)
);
alter table patch add column imagery_check jsonb;
create index patch_imagery_check_result_idx on patch ((imagery_check->>'result')) where imagery_check is not null;

-- A candidate that lies on a patch this batch judged `gone` is the demolition itself, seen as a
-- change: it becomes no patch (a disappearance is not construction) and no re-detection.
alter table batch_candidate add column demolition_of bigint references patch (id);
