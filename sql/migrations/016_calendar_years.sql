-- Years of the working-day calendar added after deployment (`tuban calendar add`, the admin API): they
-- lie over the calendar file (TUBAN_CALENDAR_FILE), so every server and worker sharing the database
-- counts deadlines on the same days. One row a year; adding a year again replaces it (a correction).
-- Template parameters: {{srid}} (unused here).
create table calendar_year (
  year integer primary key check (year between 2000 and 2100),
  holidays date[] not null,
  workdays date[] not null default '{}',
  source text not null,
  added_by text not null,
  added_at timestamptz not null default now()
);
