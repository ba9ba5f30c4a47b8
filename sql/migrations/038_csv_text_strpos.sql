-- csv_text (033) finds the characters that make a cell quoted by position, not by a regular expression: the
-- same cells, in less time. A pattern match converts the whole text to wide characters at every call; the
-- month's CSV calls it for every line's note, and a province's month is 277,777 lines (issue 33: the
-- query's line-making fell by about a sixth, serial, on 10 M patches).
-- Same argument, same result, same rule as export/write.text.ts csvCell: the columns of 037 made with the
-- old body stay as they are.
create or replace function csv_text(s text) returns text language sql immutable parallel safe as $$
  select case
    when s is null then ''
    when strpos(s, '"') > 0 or strpos(s, ',') > 0 or strpos(s, E'\n') > 0 or strpos(s, E'\r') > 0
      then '"' || case when ascii(s) in (61, 43, 45, 64, 9, 13) then '''' else '' end || replace(s, '"', '""') || '"'
    when ascii(s) in (61, 43, 45, 64, 9, 13) then '''' || s
    else s
  end
$$;
