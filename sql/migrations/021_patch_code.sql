-- Patch codes unique by construction (issue 33): <district>-<YYYYMM>-<seq>, the sequence written
-- with at least 4 digits and as many more as it has. `lpad('10000', 4, '0')` is '1000': the
-- 10,000th patch of a district-month repeated an earlier code and the whole diff rolled back.
-- (district, month, seq) is unique, and a sequence's decimal digits name it exactly, so the code is
-- too; codes below 10,000 are as before.
-- Template parameters: {{srid}} (unused here).
create function patch_code(district text, month text, seq bigint) returns text
  language sql immutable strict as $$
  select district || '-' || replace(month, '-', '') || '-' || lpad(seq::text, greatest(4, length(seq::text)), '0')
$$;
