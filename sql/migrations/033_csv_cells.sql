-- The month's CSV is made by the database (sql/export/patches.csv.sql): its text cells follow the
-- rule export/write.text.ts csvCell has, written once here; the query may run in parallel workers.
-- Template parameters: {{srid}} (unused here).

-- A text cell: empty for null; a leading apostrophe where a spreadsheet would read a formula (= + - @,
-- a tab or a CR: OWASP's rule against CSV injection); quoted, quotes doubled, where it holds a quote, a
-- comma or a line break (RFC 4180). One expression, so the planner inlines it into the query.
create or replace function csv_text(s text) returns text language sql immutable parallel safe as $$
  select case
    when s is null then ''
    when s ~ '[",\r\n]' then '"' || case when ascii(s) in (61, 43, 45, 64, 9, 13) then '''' else '' end || replace(s, '"', '""') || '"'
    when ascii(s) in (61, 43, 45, 64, 9, 13) then '''' || s
    else s
  end
$$;

-- Functions the patch lists' queries call, declared safe to run in parallel workers (they read only their
-- arguments and settings the workers share): without it PostgreSQL plans every such query on one process.
alter function patch_is_live(text) parallel safe;
alter function tuban_town() parallel safe;
