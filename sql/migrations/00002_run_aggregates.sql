-- Per-run aggregates: what a run read from the usage tables, per referral and per template, and
-- the usage rows it excluded. Written in the run's own transaction with its grants, so every
-- grant is explainable back to the usage that earned it, and the reports of a cutoff are rendered
-- from its latest run without scanning usage again. A run_id below zero is the scratch space of a
-- dry run or an explain, whose transaction is always rolled back.

-- +goose Up
CREATE TABLE run_anomalies (
  run_id          bigint      NOT NULL,
  usage_event_id  bigint      NOT NULL,
  reason          text        NOT NULL,
  user_id         text        NOT NULL,
  product         text        NOT NULL,
  template_id     text,
  amount_usd      text        NOT NULL,
  occurred_at     timestamptz NOT NULL,
  PRIMARY KEY (run_id, usage_event_id)
);

-- One row per referral with usage: the referred user's spend from referred_at on (all products,
-- and serverless only), each from its program's start.
CREATE TABLE run_referrals (
  run_id           bigint      NOT NULL,
  referred_user_id text        NOT NULL,
  referrer_id      text        NOT NULL,
  usage_rows       bigint      NOT NULL,
  spend_usd        numeric     NOT NULL,
  serverless_rows  bigint      NOT NULL,
  serverless_usd   numeric     NOT NULL,
  PRIMARY KEY (run_id, referred_user_id)
);
CREATE INDEX run_referrals_referrer ON run_referrals (run_id, referrer_id);

-- One row per template with runtime usage by others than its creator.
CREATE TABLE run_templates (
  run_id          bigint  NOT NULL,
  template_id     text    NOT NULL,
  creator_id      text    NOT NULL,
  usage_rows      bigint  NOT NULL,
  runtime_seconds bigint  NOT NULL,
  spend_usd       numeric NOT NULL,
  PRIMARY KEY (run_id, template_id)
);
CREATE INDEX run_templates_creator ON run_templates (run_id, creator_id);

-- +goose Down
DROP TABLE run_templates;
DROP TABLE run_referrals;
DROP TABLE run_anomalies;
