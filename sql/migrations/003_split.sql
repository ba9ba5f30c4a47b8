-- Patches split by an analyst keep a link to the patch they came from.
alter table patch add column split_from bigint references patch (id);
