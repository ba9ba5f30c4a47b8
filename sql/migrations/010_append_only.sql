-- One append-only rule for both history tables, naming the table it refuses for (audit_event's
-- refusals used to say patch_event). The app's own role cannot switch it off: it owns no table
-- (tuban db migrate --app-role grants it rows, not ownership; see README, Services).
create function append_only() returns trigger language plpgsql as $$
begin
  raise exception '% is append-only: % refused', tg_table_name, tg_op using errcode = 'insufficient_privilege';
end
$$;
drop trigger patch_event_no_update on patch_event;
drop trigger patch_event_no_truncate on patch_event;
drop trigger audit_event_no_update on audit_event;
drop trigger audit_event_no_truncate on audit_event;
create trigger patch_event_no_update before update or delete on patch_event
  for each row execute function append_only();
create trigger patch_event_no_truncate before truncate on patch_event
  for each statement execute function append_only();
create trigger audit_event_no_update before update or delete on audit_event
  for each row execute function append_only();
create trigger audit_event_no_truncate before truncate on audit_event
  for each statement execute function append_only();
drop function patch_event_append_only();
