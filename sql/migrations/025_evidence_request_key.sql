-- An upload sent again with its request key is the same upload (issue 31): a phone's outbox resends a
-- photo whose answer was lost, and the case keeps one file, not two.
-- Template parameters: {{srid}} (unused here).
alter table evidence add column request_key text;
create unique index evidence_request_key_idx on evidence (patch_id, request_key) where request_key is not null;
