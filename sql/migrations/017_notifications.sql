-- Notifications to 企业微信 and 钉钉 group robots (issue 30).
-- Template parameters: {{srid}} (unused here).
--
-- A channel is one group robot: a town's group (town_code) or the supervisors' (town_code null: the
-- whole city), with the events it hears. The webhook (its key is in the URL) and 钉钉's signing
-- secret are kept here and never shown back by the API or the CLI.
create table notify_channel (
  id serial primary key,
  name text not null unique check (length(name) between 1 and 100),
  kind text not null check (kind in ('wecom', 'dingtalk')),
  town_code text,
  webhook text not null,
  secret text,
  events text[] not null check (cardinality(events) > 0),
  enabled boolean not null default true,
  created_by text not null,
  created_at timestamptz not null default now(),
  last_sent_at timestamptz,
  -- the robot's last refusal or last failure for good: what the admin is shown
  last_error text,
  last_error_at timestamptz
);

-- The outbox: one row per message, written in the transaction of the change it tells of (a dispatch,
-- a send-back, the daily sweep), so a change is never kept without its message nor a message sent
-- for a change rolled back. `key` is the message's idempotency key: the same change never writes two
-- rows, and the key goes with every try of the message. A sender claims a row (sending) before it
-- posts and records the answer after; a row found still `sending` was cut off mid-send (its worker
-- died): it is sent again marked as a resend (in_doubt), never silently dropped.
create table notify_outbox (
  id bigserial primary key,
  key text not null unique,
  channel_id integer not null references notify_channel (id),
  event text not null,
  town_code text,
  content jsonb not null,
  created_at timestamptz not null default now(),
  status text not null default 'pending' check (status in ('pending', 'sending', 'sent', 'refused', 'failed', 'cancelled')),
  attempts integer not null default 0,
  in_doubt boolean not null default false,
  claimed_at timestamptz,
  sent_at timestamptz,
  last_error text
);
create index notify_outbox_open_idx on notify_outbox (id) where status in ('pending', 'sending');
create index notify_outbox_channel_idx on notify_outbox (channel_id, status);
