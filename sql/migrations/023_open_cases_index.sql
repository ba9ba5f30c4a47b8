-- The board reads every open case (dispatched or rectifying) with its deadline, by town (issue 33):
-- a province holds a hundred thousand, scattered over the table; this partial index holds what the
-- board asks of them, so it is read without visiting the table (once vacuum has marked the pages).
-- Template parameters: {{srid}} (unused here).
create index patch_open_cases_idx on patch (town_code, status)
  include (code, town_name, class, verify_due, rectify_due, overdue_since, escalated_at)
  where status in ('dispatched', 'rectifying');
