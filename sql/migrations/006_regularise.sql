-- Building-aware outlines (pipeline/regularise.ts): which method redrew a patch's outline, and
-- its area before, so the change is visible on every patch.
-- Template parameters: {{srid}} (unused here).
alter table batch_candidate add column regularised text check (regularised in ('rectangle', 'orthogonal'));
alter table batch_candidate add column raw_area_m2 double precision;
alter table patch add column regularised text check (regularised in ('rectangle', 'orthogonal'));
alter table patch add column raw_area_m2 double precision;
