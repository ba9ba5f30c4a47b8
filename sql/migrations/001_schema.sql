-- tuban schema, version 1.
-- Template parameters (replaced before running, not bind parameters):
--   {{srid}}  storage CRS of every geometry (EPSG code of a projected CRS in metres, e.g. 4548)
-- PostGIS itself is created by the migration runner (it lives in the database, not the schema).

create table setting (
  key text primary key,
  value text not null
);
insert into setting (key, value) values ('storage_srid', '{{srid}}');
-- Distinguishes this database's batches in a shared Redis (job ids are derived from it).
insert into setting (key, value) values ('instance_id', replace(gen_random_uuid()::text, '-', ''));

-- Reference layers the change polygons are diffed against.
create table reference_feature (
  id bigserial primary key,
  kind text not null check (kind in ('permit', 'building', 'farmland', 'ecological', 'water', 'town', 'grid')),
  code text,
  name text,
  district_code text,
  props jsonb not null default '{}'::jsonb,
  valid_from date,
  valid_to date,
  source_file text not null,
  source_index integer not null,
  repaired boolean not null default false,
  geom geometry(MultiPolygon, {{srid}}) not null,
  imported_at timestamptz not null default now()
);
create index reference_feature_geom_idx on reference_feature using gist (geom);
create index reference_feature_kind_idx on reference_feature (kind);

create table imagery (
  id bigserial primary key,
  month text not null check (month ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
  path text not null,
  acquired_on date not null,
  file_bytes bigint not null,
  width_px integer not null,
  height_px integer not null,
  band_count integer not null,
  sample_type text not null,
  nodata double precision,
  srid integer not null,
  geotransform double precision[] not null,
  gsd_m double precision not null,
  stretch jsonb,
  footprint geometry(Polygon, {{srid}}) not null,
  registered_at timestamptz not null default now(),
  unique (month, path)
);
create index imagery_footprint_idx on imagery using gist (footprint);

create table batch (
  id bigserial primary key,
  month text not null,
  baseline_month text not null,
  status text not null check (status in ('queued', 'running', 'completed', 'completed_with_failures', 'failed')),
  model_name text not null,
  model_version text not null,
  params jsonb not null default '{}'::jsonb,
  summary jsonb,
  created_at timestamptz not null default now(),
  finished_at timestamptz
);

create table batch_tile (
  batch_id bigint not null references batch (id) on delete cascade,
  imagery_id bigint not null references imagery (id),
  baseline_ids bigint[] not null default '{}',
  status text not null check (status in ('queued', 'detected', 'vectorized', 'failed')),
  error_code text,
  error_message text,
  windows integer,
  polygons integer,
  timings jsonb not null default '{}'::jsonb,
  updated_at timestamptz not null default now(),
  primary key (batch_id, imagery_id)
);

-- Raw change polygons of one tile (exact pixel outlines), replaced whole when a tile is re-run.
create table change_polygon (
  batch_id bigint not null references batch (id) on delete cascade,
  imagery_id bigint not null references imagery (id),
  seq integer not null,
  geom geometry(MultiPolygon, {{srid}}) not null,
  area_m2 double precision not null,
  pixel_count integer not null,
  mean_prob double precision,
  primary key (batch_id, imagery_id, seq)
);
create index change_polygon_geom_idx on change_polygon using gist (geom);

-- Patches (图斑) and what happened to them.
create table patch (
  id bigserial primary key,
  code text not null unique,
  month text not null,
  seq integer not null,
  batch_id bigint not null references batch (id),
  baseline_month text not null,
  district_code text not null,
  town_code text,
  town_name text,
  grid_code text,
  grid_name text,
  area_m2 double precision not null,
  farmland_m2 double precision not null default 0,
  ecological_m2 double precision not null default 0,
  water_m2 double precision not null default 0,
  mean_prob double precision,
  source_tiles text[] not null,
  model_name text not null,
  model_version text not null,
  status text not null default 'detected',
  geom geometry(MultiPolygon, {{srid}}) not null,
  centroid geometry(Point, {{srid}}) not null,
  created_at timestamptz not null default now(),
  unique (district_code, month, seq)
);
create index patch_geom_idx on patch using gist (geom);
create index patch_month_town_idx on patch (month, town_code);

create table patch_observation (
  patch_id bigint not null references patch (id),
  batch_id bigint not null references batch (id),
  month text not null,
  kind text not null check (kind in ('new', 'redetected')),
  area_m2 double precision not null,
  mean_prob double precision,
  geom geometry(MultiPolygon, {{srid}}) not null,
  observed_at timestamptz not null default now(),
  primary key (patch_id, batch_id)
);

-- Append-only history: the database refuses UPDATE and DELETE.
create table patch_event (
  id bigserial primary key,
  patch_id bigint not null references patch (id),
  at timestamptz not null default now(),
  actor text not null,
  type text not null,
  from_status text,
  to_status text,
  detail jsonb not null default '{}'::jsonb
);
create index patch_event_patch_idx on patch_event (patch_id, id);

create function patch_event_append_only() returns trigger language plpgsql as $$
begin
  raise exception 'patch_event is append-only: % refused', tg_op using errcode = 'insufficient_privilege';
end
$$;
create trigger patch_event_no_update before update or delete on patch_event
  for each row execute function patch_event_append_only();
create trigger patch_event_no_truncate before truncate on patch_event
  for each statement execute function patch_event_append_only();

-- Candidates of one batch's diff, kept for inspection and for the summary.
create table batch_candidate (
  batch_id bigint not null references batch (id) on delete cascade,
  seq integer not null,
  geom geometry(MultiPolygon, {{srid}}) not null,
  area_m2 double precision not null,
  mean_prob double precision,
  source_tiles text[] not null,
  district_code text,
  town_code text,
  town_name text,
  grid_code text,
  grid_name text,
  farmland_m2 double precision not null,
  ecological_m2 double precision not null,
  water_m2 double precision not null,
  matched_patch_id bigint references patch (id),
  primary key (batch_id, seq)
);
