-- A patch's latest note, the month's CSV's last cell (sql/export/patches.csv.sql), found by one probe of
-- a small index: a patch has 4–5 history events and a province 45 M of them, of which notes are a tenth.
-- Template parameters: {{srid}} (unused here).
create index if not exists patch_event_note_idx on patch_event (patch_id, id) where type = 'note';
