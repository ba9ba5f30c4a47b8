-- The board's trend counts a year of months' patches, their area and the illegal ones (issue 33): at a
-- province's size a third of a million rows read from the table each time. This index holds what the
-- count reads, so it comes from the index alone once vacuum has marked the pages.
-- Template parameters: {{srid}} (unused here).
create index patch_month_trend_idx on patch (month) include (status, town_code, area_m2, verification_result);
