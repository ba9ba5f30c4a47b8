-- Files refused at registration, kept per month so the month's batch summary lists them beside
-- the tiles that failed in the batch: one place to see everything that was not processed.
-- Template parameters: {{srid}} (unused here).
create table imagery_refusal (
  month text not null,
  path text not null,
  code text not null,
  reason text not null,
  refused_at timestamptz not null default now(),
  primary key (month, path)
);
