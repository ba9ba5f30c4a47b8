-- A scene (batch_tile) and a part (batch_part) go from queued straight to vectorized or failed:
-- detection and vectorizing are one job, so the 'detected' state was never written. The check
-- constraints stop allowing it; a row that somehow holds it is queued again (its part job reruns).
update batch_tile set status = 'queued' where status = 'detected';
update batch_part set status = 'queued' where status = 'detected';
alter table batch_tile drop constraint batch_tile_status_check;
alter table batch_tile add constraint batch_tile_status_check check (status in ('queued', 'vectorized', 'failed'));
alter table batch_part drop constraint batch_part_status_check;
alter table batch_part add constraint batch_part_status_check check (status in ('queued', 'vectorized', 'failed'));
