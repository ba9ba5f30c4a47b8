-- The board's most urgent cases per town and list, read from an index in the order it shows them
-- (issue 33): at 10 M patches a province has a million open cases, and numbering them all by town,
-- list and deadline to keep twenty of each took 2.5 s. This index holds the open cases by town, list
-- (escalated, overdue, due soon: the expression sql/workflow/board.sql uses) and running deadline, so
-- each town's list is the first rows of one range; the lists' sizes are counted from
-- patch_open_cases_idx (migration 023) alone.
-- Template parameters: {{srid}} (unused here).
create index patch_board_idx on patch (
  town_code,
  (case when escalated_at is not null then 'escalated' when overdue_since is not null then 'overdue' else 'due_soon' end),
  patch_running_due(status, verify_due, rectify_due),
  code
) where status in ('dispatched', 'rectifying');
