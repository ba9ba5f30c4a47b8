-- Small predicates the workflow, report, export and training queries share, so each rule is
-- written once. Both are immutable SQL functions: the planner inlines them.

-- The deadline a patch is running against: verification while dispatched, rectification while
-- rectifying; none in any other state.
create function patch_running_due(status text, verify_due date, rectify_due date) returns date
language sql immutable as $$
  select case status when 'dispatched' then verify_due when 'rectifying' then rectify_due end
$$;

-- A patch that stands for itself: not merged into another, not split into parts. Lists, reports,
-- exports and training chips count only these.
create function patch_is_live(status text) returns boolean
language sql immutable as $$
  select status not in ('merged', 'split')
$$;
