-- 回头看: keep a batch's judgements (workers/lookback.ts), one row per patch and batch; a patch's
-- latest judgement by month is copied onto it (imagery_check) and every judgement is a patch event.
-- Running it again for the same batch (a retried diff) changes only what changed, and adds an event
-- only for that.
-- Parameters:
--   :batch_id, :month    the batch and its month
--   :model_name, :model_version   the model that judged
--   :actor               who recorded (written into the history)
--   :checks              JSON array of {"patch_id", "result", "score" (or null), "valid_share", "reason" (or null),
--                        "evidence" (what the judgement rests on, or absent)}
with src as (
  select (c->>'patch_id')::bigint as patch_id, c->>'result' as result, (c->>'score')::float8 as score,
         (c->>'valid_share')::float8 as valid_share, c->>'reason' as reason, c->'evidence' as evidence
  from jsonb_array_elements(:checks::jsonb) c
),
saved as (
  insert into patch_imagery_check (patch_id, batch_id, month, result, score, valid_share, model_name, model_version)
  select patch_id, :batch_id::bigint, :month::text, result, score, valid_share, :model_name::text, :model_version::text from src
  on conflict (patch_id, batch_id) do update
    set result = excluded.result, score = excluded.score, valid_share = excluded.valid_share, checked_at = now()
    where (patch_imagery_check.result, patch_imagery_check.score) is distinct from (excluded.result, excluded.score)
  returning patch_id, result, score, valid_share
),
judged as (
  select s.*, r.reason, r.evidence,
         jsonb_build_object('month', :month::text, 'result', s.result, 'score', round(s.score::numeric, 3),
                            'model_name', :model_name::text, 'model_version', :model_version::text, 'batch_id', :batch_id::bigint) as verdict
  from saved s join src r using (patch_id)
),
latest as (
  update patch p set imagery_check = j.verdict
  from judged j
  where p.id = j.patch_id and (p.imagery_check is null or p.imagery_check->>'month' <= :month::text)
  returning p.id
)
insert into patch_event (patch_id, actor, type, from_status, to_status, detail)
select j.patch_id, :actor::text, 'imagery_check', p.status, p.status,
       j.verdict || jsonb_build_object('valid_share', round(j.valid_share::numeric, 3))
         || case when j.reason is not null then jsonb_build_object('reason', j.reason) else '{}'::jsonb end
         || case when j.evidence is not null then jsonb_build_object('evidence', j.evidence) else '{}'::jsonb end
from judged j join patch p on p.id = j.patch_id
order by j.patch_id;
