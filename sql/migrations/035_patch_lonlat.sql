-- A patch's centre in longitude and latitude (WGS 84), kept beside the centroid it comes from: every
-- list, page and export shows it, and transforming it at each read cost the month's CSV about 0.8 s
-- of CPU at a province's month of 277,777 patches (issue 33). Generated, so no writer can leave it
-- behind its centroid. Adding it rewrites the table once.
-- Template parameters: {{srid}} (unused here).
alter table patch
  add column if not exists lon float8 generated always as (ST_X(ST_Transform(centroid, 4326))) stored,
  add column if not exists lat float8 generated always as (ST_Y(ST_Transform(centroid, 4326))) stored;
