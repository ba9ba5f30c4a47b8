-- Town scope held by the database as well (issue 29): a town user's requests run with the setting
-- tuban.town naming their town (store/db.ts sets it on every connection the request takes), and
-- these policies show such a session only that town's patches and what hangs on them, so a query
-- that forgets its `where town_code = …` still returns nothing of another town. Sessions with the
-- setting empty or unset (analysts, supervisors, workers, the CLI) see every row. Policies bind the
-- app role (TUBAN_APP_ROLE); the tables' owner and superusers are not subject to them.
-- Template parameters: {{srid}} (unused here).
create function tuban_town() returns text language sql stable as $$
  select nullif(current_setting('tuban.town', true), '')
$$;

alter table patch enable row level security;
create policy patch_town on patch
  using (tuban_town() is null or town_code = tuban_town());

-- rows that belong to a patch are seen where the patch is (the patch's own policy applies inside)
alter table patch_event enable row level security;
create policy patch_event_town on patch_event
  using (case when tuban_town() is null then true else exists (select 1 from patch p where p.id = patch_id) end);
alter table evidence enable row level security;
create policy evidence_town on evidence
  using (case when tuban_town() is null then true else exists (select 1 from patch p where p.id = patch_id) end);
alter table patch_observation enable row level security;
create policy patch_observation_town on patch_observation
  using (case when tuban_town() is null then true else exists (select 1 from patch p where p.id = patch_id) end);
