-- A patch's latest note, kept on the patch. The history (patch_event) stays the record; this is its copy
-- for the lists that show one cell per patch: the month's CSV writes it on every line, and finding it
-- in a province's 45 M events was one index probe per line, made by one process after the parallel
-- workers had made the rest (0.7 s of a 277,777-line month, issue 33).
-- Kept by a trigger whoever writes the note, once per statement (a workflow move writes one event and no
-- note: one look at that row). Enabled always, like the tallies (migration 029): maintenance under
-- session_replication_role = replica must not leave it behind the history.
-- Template parameters: {{srid}} (unused here).
-- latest_note_id: the event it copies. Two notes written at once may update the patch in either order;
-- the later id wins (PostgreSQL checks the condition again on the row another writer left).
alter table patch add column if not exists latest_note text, add column if not exists latest_note_id bigint;

create or replace function patch_latest_note_apply() returns trigger language plpgsql as $$
begin
  if exists (select 1 from new_rows where type = 'note') then
    -- the note of each patch with the highest id: the latest, when a statement writes several
    update patch p set latest_note = n.text, latest_note_id = n.id
    from (select distinct on (patch_id) patch_id, id, detail->>'text' as text
          from new_rows where type = 'note' order by patch_id, id desc) n
    where p.id = n.patch_id and (p.latest_note_id is null or p.latest_note_id < n.id);
  end if;
  return null;
end
$$;

drop trigger if exists patch_latest_note on patch_event;
create trigger patch_latest_note after insert on patch_event
  referencing new table as new_rows for each statement execute function patch_latest_note_apply();
alter table patch_event enable always trigger patch_latest_note;

-- the notes written before (the tallies count none of this column: their trigger is spared the rows)
alter table patch disable trigger patch_month_tally_update;
update patch p set latest_note = n.text, latest_note_id = n.id
from (select distinct on (patch_id) patch_id, id, detail->>'text' as text
      from patch_event where type = 'note' order by patch_id, id desc) n
where p.id = n.patch_id;
alter table patch enable always trigger patch_month_tally_update;

-- nothing looks a note up in the history any more (migration 034's index served the CSV's probe)
drop index if exists patch_event_note_idx;
