-- The month's patch list as CSV lines, made by the database: one text per patch ending in CRLF, the
-- cells export/fields.ts toRecord gives the other formats (sql/export/patches.sql), written by the rule
-- of export/write.text.ts csvCell (text through csv_text, migration 033), in the same order. A
-- province's month is 277,777 patches: formatted in Node it took most of five seconds (issue 33); here
-- PostgreSQL shares every cell among parallel workers, and Node passes bytes on. What each line would
-- otherwise look up or work out again is kept on the patch: the cells that depend on its row alone
-- (migration 037) and its latest note (036). Dates are cast, not formatted (eachText sets the ISO style).
-- Numbers (here and in 037): Math.round(v * 10^d) / 10^d written as floor(v * 10^d + 0.5) / 10^d, the
-- shortest digits that read back the same double (PostgreSQL's float output, as JavaScript's String); one
-- difference: a coordinate within 1e-4 of zero (11 m of the equator or the prime meridian) is written 5e-05.
-- Parameters (export/patches.ts writes them in as quoted literals: COPY takes no bind parameters):
--   :month :town :scope_town :states   as in sql/export/patches.sql
--   :codes        only these patches (a town's package), as a text array literal, or null
--   :today        YYYY-MM-DD, the day days overdue count to
--   :covered      the last day the calendar knows the holidays of: a deadline after it is provisional
--   :late         int[]: element k, working days from k days before :today to :today on the calendar
--                 (workflow/calendar.ts workingDaysBetween); its last element also for older days
--   :l_relation :l_class :l_status :l_result :l_violation :l_measure :l_lookback :l_source
--                 jsonb {code: cells}: the words for each code, already CSV cells, with the comma after
--                 them; for class, status, result and lookback the code's own cell and its comma too
--                 (待核查,detected,). A code without words is written as itself.
-- A comma is a piece of its own only where no cell carries it: a line is made of 34 pieces, not 56 (every
-- piece is copied out and in once; at 10 M patches the lines took about a quarter less, serial).
with imagery_dates as (
  select jsonb_object_agg(month, on_date) as dates
  from (select month, to_char(max(acquired_on), 'YYYY-MM-DD') as on_date from imagery group by month) m
)
select r.line
from (
  -- every cell, worked out in PostgreSQL's parallel workers, each reading the month's rows in order from
  -- patch_month_town_code_idx (migration 039): no sort, and the first lines go out at once
  select p.town_code, p.code, concat(
           -- the imagery's dates: the month's, and its baseline's (one lookup, made once, not a join: a join
           -- would lose the order the rows come in)
           p.code, ',', p.month, ',', (select dates from imagery_dates) ->> p.baseline_month, ',',
           (select dates from imagery_dates) ->> p.month, ',', p.csv_place, ',',
           coalesce(:l_relation::jsonb ->> p.building_relation, p.building_relation || ',', ','), p.csv_building, ',',
           coalesce(:l_class::jsonb ->> p.class, p.class || ',' || p.class || ',', ',,'),
           coalesce(:l_status::jsonb ->> p.status, csv_text(p.status) || ',' || csv_text(p.status) || ','),
           coalesce(:l_result::jsonb ->> p.verification_result,
                    csv_text(p.verification_result) || ',' || csv_text(p.verification_result) || ','),
           coalesce(:l_violation::jsonb ->> p.violation, csv_text(p.violation) || ','),
           coalesce(:l_measure::jsonb ->> p.measure, csv_text(p.measure) || ','),
           case when p.escalated_at is not null then '是,' else '否,' end,
           p.overdue_since::text, ',', p.verify_due::text, ',', p.rectify_due::text, ',',
           case when p.verify_due > :covered::date or p.rectify_due > :covered::date then '是,' else '否,' end,
           -- working days past the running deadline (verification while dispatched, rectification while rectifying)
           case when (case p.status when 'dispatched' then p.verify_due when 'rectifying' then p.rectify_due end)
                     < :today::date
             then (:late::int[])[least(:today::date - case p.status when 'dispatched' then p.verify_due
                                                                    else p.rectify_due end,
                                       cardinality(:late::int[]))]
             else 0 end, ',',
           case when p.imagery_check is null then ',,,,' else concat(
             csv_text(p.imagery_check->>'month'), ',',
             coalesce(:l_lookback::jsonb ->> (p.imagery_check->>'result'),
                      csv_text(p.imagery_check->>'result') || ',' || csv_text(p.imagery_check->>'result') || ','),
             case when jsonb_typeof(p.imagery_check->'score') = 'number'
               then (floor((p.imagery_check->>'score')::float8 * 100 + 0.5) / 100)::text end, ',') end,
           coalesce(:l_source::jsonb ->> p.source, p.source || ',', ','),
           p.csv_model, ',', csv_text(p.latest_note), E'\r\n'
         ) as line
  from patch p
  where p.month = :month::text
    and patch_is_live(p.status)
    and (:town::text is null or p.town_code = :town::text)
    and (:scope_town::text is null or p.town_code = :scope_town::text)
    and (:states::text[] is null or p.status = any(:states::text[]))
    and (:codes::text[] is null or p.code = any(:codes::text[]))
  order by p.town_code, p.code
) r
order by r.town_code, r.code;
