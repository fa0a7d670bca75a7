-- Source tables of SPEC 3.1, owned by billing. creditrecon only reads them in production;
-- this DDL ships for the tests, the demo and the benchmarks.
CREATE TABLE IF NOT EXISTS users (
  id          text PRIMARY KEY,
  created_at  timestamptz NOT NULL,
  country     text            -- SPEC 8.1, optional: ISO 3166-1 alpha-2, may be null or odd
);
-- Databases created before users.country existed.
ALTER TABLE users ADD COLUMN IF NOT EXISTS country text;
CREATE TABLE IF NOT EXISTS referrals (
  referred_user_id text PRIMARY KEY REFERENCES users (id),
  referrer_id      text NOT NULL REFERENCES users (id),
  referred_at      timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS templates (
  id          text PRIMARY KEY,
  creator_id  text NOT NULL REFERENCES users (id),
  created_at  timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS usage_events (
  id              bigint PRIMARY KEY,
  user_id         text NOT NULL,
  product         text NOT NULL,
  template_id     text,
  amount_usd      numeric NOT NULL,
  runtime_seconds bigint NOT NULL DEFAULT 0,
  occurred_at     timestamptz NOT NULL,
  ingested_at     timestamptz NOT NULL DEFAULT now()
);
-- The optional billing table of SPEC 8.1 (credit loads, read by the signup bonus). Production
-- has its own table, owned by billing; the job only reads it. Like usage_events: no foreign key,
-- refunds are negative amounts, late rows have a late ingested_at.
CREATE TABLE IF NOT EXISTS credit_loads (
  id          bigint PRIMARY KEY,
  user_id     text NOT NULL,
  amount_usd  numeric NOT NULL,
  loaded_at   timestamptz NOT NULL,
  ingested_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS credit_loads_user_loaded_idx ON credit_loads (user_id, loaded_at);
