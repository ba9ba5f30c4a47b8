-- The cells of a patch's CSV line (sql/export/patches.csv.sql) that depend on its row alone, kept with it
-- as text. A province's month is 277,777 lines; making these 18 cells at each download (twelve numbers
-- rounded and written, five text cells checked for quotes and formulas) was about half the database's
-- work for the month's CSV (issue 33). Generated, so a write to the patch rewrites them and no
-- writer can leave them behind. What depends on more than the row stays in the query: the words for codes
-- (the locale's), the imagery's dates, the calendar's, the days overdue (today's), dates (their text
-- follows the connection's DateStyle), the latest note (kept by 036's trigger).
-- Each is the query's cells as it wrote them, joined by commas (|| with every null made empty: concat is not
-- immutable); csv_text is 033's rule. A change to that rule, or to how a cell here is written, must rewrite
-- these columns (drop and add them again).
-- Numbers are float8 text under the writing connection's extra_float_digits: each is rounded to 2 or 7
-- decimals first (under 15 significant digits), so 0 to 3 (PostgreSQL's default is 1) all write it alike.
-- Adding them rewrites the table once.
-- Template parameters: {{srid}} (unused here).
alter table patch
  -- 区县代码 … 占水域: district, town code, town, grid, centre X and Y (the storage projection), longitude
  -- and latitude, area in m² and mu, m² on farmland, ecological red line and water
  add column if not exists csv_place text generated always as (
    csv_text(district_code) || ',' || csv_text(town_code) || ',' || csv_text(town_name) || ',' ||
    csv_text(grid_code) || ',' ||
    -- an empty point has no coordinates: empty cells, as the query's concat wrote them
    coalesce((floor(ST_X(centroid) * 100 + 0.5) / 100)::text, '') || ',' ||
    coalesce((floor(ST_Y(centroid) * 100 + 0.5) / 100)::text, '') || ',' ||
    coalesce((floor(ST_X(ST_Transform(centroid, 4326)) * 10000000 + 0.5) / 10000000)::text, '') || ',' ||
    coalesce((floor(ST_Y(ST_Transform(centroid, 4326)) * 10000000 + 0.5) / 10000000)::text, '') || ',' ||
    (floor(area_m2 * 100 + 0.5) / 100)::text || ',' ||
    (floor(area_m2 / (10000::float8 / 15) * 100 + 0.5) / 100)::text || ',' ||
    (floor(farmland_m2 * 100 + 0.5) / 100)::text || ',' ||
    (floor(ecological_m2 * 100 + 0.5) / 100)::text || ',' ||
    (floor(water_m2 * 100 + 0.5) / 100)::text
  ) stored,
  -- 变化类型代码, 占登记建筑(平方米), 登记建筑外(平方米)
  add column if not exists csv_building text generated always as (
    building_relation || ',' ||
    (floor(registered_building_m2 * 100 + 0.5) / 100)::text || ',' ||
    (floor(extension_m2 * 100 + 0.5) / 100)::text
  ) stored,
  -- 模型, 置信度
  add column if not exists csv_model text generated always as (
    coalesce(case when model_name <> '' then csv_text(model_name || ' ' || model_version) end, '') || ',' ||
    coalesce((floor(mean_prob * 100 + 0.5) / 100)::text, '')
  ) stored;
