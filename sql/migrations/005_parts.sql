-- Scenes are processed in parts (window ranges), each with its own detect and vectorize jobs, so
-- a scene of any size is handled in bounded memory and several workers share one scene.
-- Template parameters: {{srid}} (unused here).

create table batch_part (
  batch_id bigint not null,
  imagery_id bigint not null,
  part integer not null,
  x integer not null,
  y integer not null,
  width integer not null,
  height integer not null,
  status text not null check (status in ('queued', 'detected', 'vectorized', 'failed')),
  error_code text,
  error_message text,
  windows integer,
  polygons integer,
  valid_px bigint,
  timings jsonb not null default '{}'::jsonb,
  updated_at timestamptz not null default now(),
  primary key (batch_id, imagery_id, part),
  foreign key (batch_id, imagery_id) references batch_tile (batch_id, imagery_id) on delete cascade
);

alter table change_polygon add column part integer not null default 0;
alter table change_polygon drop constraint change_polygon_pkey;
alter table change_polygon add primary key (batch_id, imagery_id, part, seq);
