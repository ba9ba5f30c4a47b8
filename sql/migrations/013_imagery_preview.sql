-- A low-resolution preview of each registered image (pipeline/io/preview.ts): the web map draws
-- zoom levels coarser than 2 m/px from it. Null for images registered before, or already coarse.
alter table imagery add column preview_path text;
alter table imagery add column preview_res_m double precision;
