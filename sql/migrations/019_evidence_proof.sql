-- Photos that prove themselves (issue 31): each evidence file is marked with the stage it documents
-- (verify: 核查, the building as found; rectify: 整改, the result of the order) and with the flags its
-- EXIF and the server's clock give (taken before dispatch, after its own upload, no time, no position,
-- far from the patch). A stamped copy (time, position, patch code, user and stage drawn into the
-- image) is what exports and PDF sheets show; the original stays as uploaded, with its SHA-256.
-- Template parameters: {{srid}} (unused here).
alter table evidence add column stage text not null default 'verify' check (stage in ('verify', 'rectify'));
alter table evidence add column flags text[] not null default '{}';
alter table evidence add column distance_m double precision;
alter table evidence add column stamped_as text;
alter table evidence add column stamped_bytes integer;

-- files uploaded before this: a photo added after the patch first went to rectifying documents the
-- rectification; what EXIF lacked is flagged as it would be now (the clock checks are not replayed)
update evidence e set stage = 'rectify'
  where exists (
    select 1 from patch_event pe
    where pe.patch_id = e.patch_id and pe.to_status = 'rectifying' and pe.at <= e.uploaded_at
  );
update evidence set flags = array_remove(array[
    case when taken_at is null then 'no_time' end,
    case when lon is null then 'no_position' end
  ], null)
  where content_type like 'image/%';
create index evidence_patch_stage_idx on evidence (patch_id, stage);
