-- The trend's figures kept as the patches change (issue 33): per month of detection and town, the live
-- patches (not merged, not split), their area and how many were verified illegal. The board's trend read a
-- year of months' patches at every request (3.3 M index entries and 856 ms at 10 M patches); it now reads
-- at most a year of months × the towns from here. Statement-level triggers with transition tables keep it:
-- a batch's emit of 48,000 patches adds a few hundred rows' worth in one statement, and an update that
-- touches none of the counted columns adds nothing. The triggers fire always, also with
-- session_replication_role = replica (which the other triggers leave to let maintenance past them).
-- Not behind the town policy: the same counts per town are what the monthly ranking publishes to every
-- role, and a town user's move on a patch must be able to count it.
-- Template parameters: {{srid}} (unused here).
create table patch_month_tally (
  month text not null,
  town_code text not null, -- '' for the patches outside every town
  live integer not null default 0,
  live_area_m2 numeric not null default 0,
  illegal integer not null default 0,
  primary key (month, town_code)
);

create function patch_month_tally_apply() returns trigger language plpgsql as $$
begin
  -- rows in a fixed order, so two statements upserting the same months and towns lock them in one order
  if tg_op = 'INSERT' then
    insert into patch_month_tally as t (month, town_code, live, live_area_m2, illegal)
    select month, coalesce(town_code, ''), count(*), sum(area_m2::numeric),
           count(*) filter (where verification_result = 'illegal')
    from new_rows where patch_is_live(status)
    group by 1, 2 order by 1, 2
    on conflict (month, town_code) do update
      set live = t.live + excluded.live, live_area_m2 = t.live_area_m2 + excluded.live_area_m2,
          illegal = t.illegal + excluded.illegal;
  elsif tg_op = 'DELETE' then
    update patch_month_tally t
    set live = t.live - d.live, live_area_m2 = t.live_area_m2 - d.area, illegal = t.illegal - d.illegal
    from (
      select month, coalesce(town_code, '') as town_code, count(*) as live, sum(area_m2::numeric) as area,
             count(*) filter (where verification_result = 'illegal') as illegal
      from old_rows where patch_is_live(status)
      group by 1, 2
    ) d
    where t.month = d.month and t.town_code = d.town_code;
  else
    -- only the rows whose counted values changed (a move between two live states, detected → dispatched,
    -- changes none, and so locks no tally row): out with the old values, in with the new
    insert into patch_month_tally as t (month, town_code, live, live_area_m2, illegal)
    select month, town_code, sum(live), sum(area), sum(illegal)
    from (
      select o.month, coalesce(o.town_code, '') as town_code, -1 as live, -o.area_m2::numeric as area,
             -(o.verification_result is not distinct from 'illegal')::int as illegal
      from old_rows o join new_rows n on n.id = o.id
      where patch_is_live(o.status)
        and (n.month, n.town_code, n.area_m2, patch_is_live(n.status), n.verification_result is not distinct from 'illegal')
            is distinct from (o.month, o.town_code, o.area_m2, patch_is_live(o.status), o.verification_result is not distinct from 'illegal')
      union all
      select n.month, coalesce(n.town_code, ''), 1, n.area_m2::numeric, (n.verification_result is not distinct from 'illegal')::int
      from new_rows n join old_rows o on o.id = n.id
      where patch_is_live(n.status)
        and (n.month, n.town_code, n.area_m2, patch_is_live(n.status), n.verification_result is not distinct from 'illegal')
            is distinct from (o.month, o.town_code, o.area_m2, patch_is_live(o.status), o.verification_result is not distinct from 'illegal')
    ) d
    group by 1, 2
    having sum(live) <> 0 or sum(area) <> 0 or sum(illegal) <> 0
    order by 1, 2
    on conflict (month, town_code) do update
      set live = t.live + excluded.live, live_area_m2 = t.live_area_m2 + excluded.live_area_m2,
          illegal = t.illegal + excluded.illegal;
  end if;
  return null;
end
$$;

create trigger patch_month_tally_insert after insert on patch
  referencing new table as new_rows for each statement execute function patch_month_tally_apply();
create trigger patch_month_tally_update after update on patch
  referencing old table as old_rows new table as new_rows for each statement execute function patch_month_tally_apply();
create trigger patch_month_tally_delete after delete on patch
  referencing old table as old_rows for each statement execute function patch_month_tally_apply();
alter table patch enable always trigger patch_month_tally_insert;
alter table patch enable always trigger patch_month_tally_update;
alter table patch enable always trigger patch_month_tally_delete;

-- the patches already there
insert into patch_month_tally (month, town_code, live, live_area_m2, illegal)
select month, coalesce(town_code, ''), count(*), sum(area_m2::numeric),
       count(*) filter (where verification_result = 'illegal')
from patch where patch_is_live(status)
group by 1, 2;
