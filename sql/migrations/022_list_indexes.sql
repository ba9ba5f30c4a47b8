-- Lists that cost what they show (issue 33): the month's list and the web map read a month in code
-- order, and the all-months lists by state in code order; with these an index walk gives the page,
-- where before the whole month (or every patch in the state) was read and sorted for it.
-- Template parameters: {{srid}} (unused here).
create index patch_month_code_idx on patch (month, code);
create index patch_status_code_idx on patch (status, code);
