-- History rows are stamped by the database (issue 29): whatever an insert says, a patch_event or
-- audit_event row takes its id from the table's sequence and its time from the transaction, so the
-- app role (or anyone who gets its connection) cannot back-date a close or slip a row in among old ones.
-- Template parameters: {{srid}} (unused here).
create function history_stamp() returns trigger language plpgsql as $$
declare
  seq text := pg_get_serial_sequence(quote_ident(tg_table_schema) || '.' || quote_ident(tg_table_name), 'id');
  fresh boolean;
begin
  -- an id the column's default just drew in this session is kept; any other is replaced by a new one
  begin
    fresh := new.id = currval(seq);
  exception when object_not_in_prerequisite_state then
    fresh := false; -- the sequence not drawn from in this session: the id was given
  end;
  if not fresh then
    new.id := nextval(seq);
  end if;
  new.at := now();
  return new;
end
$$;
create trigger patch_event_stamp before insert on patch_event
  for each row execute function history_stamp();
create trigger audit_event_stamp before insert on audit_event
  for each row execute function history_stamp();
