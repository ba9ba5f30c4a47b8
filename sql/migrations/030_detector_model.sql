-- The change models this city has run and trained (issue 32): each version with its folder, its card
-- (the manifest) and where it came from, so a fine-tuned model is promoted by a rule, not by copying a
-- folder, and the one before it can be put back. Batches keep the name and version they ran
-- (batch.model_name / model_version), which is how a patch says which model made it.
--   training   a fine-tune running in the background (trained_on names its run folder and process)
--   failed     the fine-tune stopped with an error (trained_on.error) or was killed; resumable if it left a checkpoint
--   candidate  trained and exported; waits for `tuban model evaluate` and `promote`
--   running    the model new batches use (at most one)
--   retired    ran before, or was set aside by a rollback
-- Template parameters: {{srid}} (unused here).
create table detector_model (
  id bigserial primary key,
  name text not null,
  version text not null,
  dir text not null,
  sha256 text,
  status text not null check (status in ('training', 'failed', 'candidate', 'running', 'retired')),
  parent_id bigint references detector_model (id),
  card jsonb,
  trained_on jsonb,
  evaluation jsonb,
  validation jsonb not null default '{}',
  created_at timestamptz not null default now(),
  promoted_at timestamptz,
  unique (name, version)
);

create unique index detector_model_one_running on detector_model ((true)) where status = 'running';

-- What was done to each model, by whom, with the figures that decided it (a refused promotion too).
create table detector_model_event (
  id bigserial primary key,
  model_id bigint not null references detector_model (id),
  action text not null check (action in ('registered', 'train_started', 'train_resumed', 'trained', 'train_failed',
                                         'evaluated', 'promoted', 'refused', 'rolled_back', 'restored', 'retired')),
  actor text not null,
  detail jsonb not null default '{}',
  at timestamptz not null default now()
);

create index detector_model_event_model on detector_model_event (model_id, id);
