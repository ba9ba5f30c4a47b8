-- The diff of a batch in stages, each its own transaction (issue 33): a province's month held in one
-- transaction kept its locks and its undo for the whole diff, and a failure near the end threw all of
-- it away. Now the candidates (traced, merged, made legal, attributed, matched) are committed first,
-- then each district's patches are numbered and written in a transaction of their own, then the batch
-- is closed. `candidates_round` says which round of the batch (its retries) the stored candidates
-- belong to, so a diff started again after a failure goes on from the first district not yet written
-- (`emitted`), and a retry of failed tiles computes them afresh.
-- Template parameters: {{srid}} (unused here).
alter table batch add column candidates_round integer;
alter table batch_candidate add column emitted boolean not null default false;
alter table batch add column candidates_timings jsonb;
