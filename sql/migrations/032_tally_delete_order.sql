-- The tally's delete branch (migration 029) updated its rows in whatever order the join gave: two deletes
-- of patches of the same months and towns could lock them in opposite orders and deadlock. It now adds
-- the negative counts by the same ordered upsert as the insert and update branches. (TRUNCATE needs no
-- branch: patch_event's references refuse a TRUNCATE of patch, and its own trigger a cascade.)
-- Template parameters: {{srid}} (unused here).
create or replace function patch_month_tally_apply() returns trigger language plpgsql as $$
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
    insert into patch_month_tally as t (month, town_code, live, live_area_m2, illegal)
    select month, coalesce(town_code, ''), -count(*), -sum(area_m2::numeric),
           -count(*) filter (where verification_result = 'illegal')
    from old_rows where patch_is_live(status)
    group by 1, 2 order by 1, 2
    on conflict (month, town_code) do update
      set live = t.live + excluded.live, live_area_m2 = t.live_area_m2 + excluded.live_area_m2,
          illegal = t.illegal + excluded.illegal;
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
