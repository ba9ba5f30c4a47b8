-- Workflow: verification, rectification, deadlines, users and tokens, evidence, audit.
-- Template parameters: {{srid}} (unused here).

alter table patch
  add column class text not null default 'general' check (class in ('ecological', 'farmland', 'water', 'general')),
  add column dispatched_at timestamptz,
  add column verify_due date,
  add column verification_result text,
  add column violation text,
  add column permit_ref text,
  add column verified_at timestamptz,
  add column measure text,
  add column rectify_due date,
  add column rectified_at timestamptz,
  add column closed_at timestamptz,
  add column dismiss_reason text,
  add column overdue_since date,
  add column escalated_at timestamptz,
  add column rebuilt_of bigint references patch (id),
  add column merged_into bigint references patch (id);

update patch set class = case when ecological_m2 > 0 then 'ecological' when farmland_m2 > 0 then 'farmland' when water_m2 > 0 then 'water' else 'general' end;
create index patch_status_idx on patch (status);

create table app_user (
  id bigserial primary key,
  username text not null unique,
  display_name text not null,
  role text not null check (role in ('analyst', 'town', 'supervisor', 'admin')),
  town_code text,
  password_hash text,
  disabled boolean not null default false,
  created_at timestamptz not null default now(),
  check ((role = 'town') = (town_code is not null))
);

-- API tokens are stored as SHA-256 hashes; the token itself is shown once, when issued.
create table api_token (
  id bigserial primary key,
  user_id bigint not null references app_user (id),
  token_hash text not null unique,
  label text not null default '',
  created_at timestamptz not null default now(),
  last_used_at timestamptz,
  revoked_at timestamptz
);

create table evidence (
  id bigserial primary key,
  patch_id bigint not null references patch (id),
  filename text not null,
  content_type text not null,
  bytes integer not null,
  sha256 text not null,
  stored_as text not null,
  note text,
  uploaded_by bigint not null references app_user (id),
  uploaded_at timestamptz not null default now()
);
create index evidence_patch_idx on evidence (patch_id);

-- Every mutating request: who, when, from where, what, with which outcome. Append-only.
create table audit_event (
  id bigserial primary key,
  at timestamptz not null default now(),
  user_id bigint,
  username text,
  remote_addr text,
  method text not null,
  path text not null,
  status integer not null,
  detail jsonb not null default '{}'::jsonb
);
create trigger audit_event_no_update before update or delete on audit_event
  for each row execute function patch_event_append_only();
create trigger audit_event_no_truncate before truncate on audit_event
  for each statement execute function patch_event_append_only();

alter table batch_candidate add column rebuilt_of bigint references patch (id);
