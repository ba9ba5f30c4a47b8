-- Tokens expire (TUBAN_TOKEN_DAYS, 30 by default). Tokens issued before this migration get
-- 30 days from when they were issued: those older than that stop working now.
alter table api_token add column expires_at timestamptz;
update api_token set expires_at = created_at + interval '30 days' where expires_at is null;
alter table api_token alter column expires_at set not null;
create index api_token_user_idx on api_token (user_id) where revoked_at is null;
