-- Patches the imagery did not give (issue 32): construction a town found on patrol (巡查发现) or the
-- public reported (群众举报), drawn on a month's imagery and entered into the same workflow. A reported
-- patch has no batch and no model; `visible` says whether the reporter saw it on that month's imagery
-- (against its baseline month's), which is what makes a confirmed one a building the model missed — a
-- training label and, on a held-out month, a miss the promotion rule counts.
--   source   imagery (made by a batch), patrol, complaint
--   visible  reported patches: shown by the month's imagery; null for patches made by a batch
--   reported_by, report_key  who reported it and the request key their client sent: the same key again
--            is the same patch (a second tap, a retry after a lost answer), found by the unique index
-- Template parameters: {{srid}} (unused here).
alter table patch add column source text not null default 'imagery'
  check (source in ('imagery', 'patrol', 'complaint'));
alter table patch add column visible boolean;
alter table patch add column reported_by text;
alter table patch add column report_key text;
create unique index patch_report_key_idx on patch (reported_by, report_key) where report_key is not null;
alter table patch alter column batch_id drop not null;
alter table patch alter column model_name drop not null;
alter table patch alter column model_version drop not null;
alter table patch add constraint patch_source_batch check (
  case when source = 'imagery' then batch_id is not null and model_name is not null and model_version is not null and visible is null
       else model_name is null and model_version is null and visible is not null and reported_by is not null end
);
