-- Source tables of SPEC 3.1, owned by billing. creditrecon only reads them in production;
-- this DDL ships for the tests, the demo and the benchmarks.
CREATE TABLE IF NOT EXISTS users (
  id          text PRIMARY KEY,
  created_at  timestamptz NOT NULL
);
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
