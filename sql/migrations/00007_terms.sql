-- Program terms as versioned data (SPEC 7). Every grant names the terms version of its account
-- (grants written before terms existed belong to `seed`, whose keys do not change); an account's
-- chain is per program, version, account and role. terms_versions records, append-only, every
-- version a committed run used. run_terms and run_rates are the terms of each run in relational
-- form, which the aggregate and report queries join: the versions each relationship binds to by
-- its start, and the rate of every product class in every period bucket.

-- +goose Up
ALTER TABLE credit_grants ADD COLUMN terms_id text NOT NULL DEFAULT 'seed';
DROP INDEX credit_grants_chain;
CREATE UNIQUE INDEX credit_grants_chain ON credit_grants (program, terms_id, account_id, role, granted_before_usd);

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION credit_grants_check_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  before numeric;
BEGIN
  SELECT coalesce(sum(amount_usd), 0) INTO before FROM credit_grants
   WHERE program = NEW.program AND terms_id = NEW.terms_id AND account_id = NEW.account_id AND role = NEW.role;
  IF before <> NEW.granted_before_usd THEN
    RAISE EXCEPTION 'grant % breaks its account chain: granted before is %, the row says %',
      NEW.idempotency_key, before, NEW.granted_before_usd USING ERRCODE = 'unique_violation';
  END IF;
  RETURN NEW;
END $$;
-- +goose StatementEnd

ALTER TABLE credit_accounts ADD COLUMN terms_id text NOT NULL DEFAULT 'seed';
ALTER TABLE credit_accounts DROP CONSTRAINT credit_accounts_pkey;
ALTER TABLE credit_accounts ADD PRIMARY KEY (program, terms_id, account_id, role);

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION credit_accounts_add() RETURNS trigger LANGUAGE plpgsql
  SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
  INSERT INTO credit_accounts AS a (program, terms_id, account_id, role, beneficiary_id, grants, granted_usd)
  SELECT program, terms_id, account_id, role, max(beneficiary_id), count(*), sum(amount_usd)
    FROM new_grants
   GROUP BY program, terms_id, account_id, role
  ON CONFLICT (program, terms_id, account_id, role) DO UPDATE
    SET beneficiary_id = greatest(a.beneficiary_id, excluded.beneficiary_id),
        grants = a.grants + excluded.grants,
        granted_usd = a.granted_usd + excluded.granted_usd;
  RETURN NULL;
END $$;
-- +goose StatementEnd

-- Every version a committed run used, once per distinct content: a version's content may grow
-- only by rate periods that start after the latest successful cutoff, and each such content is a
-- row of its own. content is the canonical JSON the job hashed, kept as text so that its bytes
-- still hash to sha256.
CREATE TABLE terms_versions (
  program      text        NOT NULL CHECK (program IN ('serverless_referral', 'referral', 'template')),
  id           text        NOT NULL,
  sha256       text        NOT NULL,
  valid_from   timestamptz,                 -- NULL: since forever
  content      text        NOT NULL,
  first_run_id bigint      NOT NULL REFERENCES recon_runs (id),
  recorded_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (program, id, sha256)
);

-- +goose StatementBegin
CREATE FUNCTION terms_versions_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'terms_versions is append-only: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$;
-- +goose StatementEnd
CREATE TRIGGER terms_versions_no_update BEFORE UPDATE OR DELETE ON terms_versions
  FOR EACH ROW EXECUTE FUNCTION terms_versions_append_only();
CREATE TRIGGER terms_versions_no_truncate BEFORE TRUNCATE ON terms_versions
  FOR EACH STATEMENT EXECUTE FUNCTION terms_versions_append_only();

-- The terms a run used: its file's SHA-256 (empty: the built-in terms), every version's id and
-- hash, the whole terms as JSON (reports of its cutoff evaluate under them), whether it was
-- allowed to be retroactive, and the usage cutoff (the cutoff less the holding period).
ALTER TABLE recon_runs
  ADD COLUMN terms jsonb,
  ADD COLUMN allow_retroactive boolean NOT NULL DEFAULT false,
  ADD COLUMN usage_cutoff timestamptz;

-- Per run, per program, the versions in binding order: a relationship that starts at s binds to
-- the version with valid_from <= s < valid_to. window_end of a start s is s + window (months in
-- UTC as interval 'N months' adds them, or days of 24 hours); a lifetime window never ends.
CREATE TABLE run_terms (
  run_id          bigint      NOT NULL,
  program         text        NOT NULL,
  terms_id        text        NOT NULL,
  valid_from      timestamptz NOT NULL,
  valid_to        timestamptz NOT NULL,
  enabled         boolean     NOT NULL,
  window_months   integer     NOT NULL,
  window_days     integer     NOT NULL,
  max_account_age interval,
  PRIMARY KEY (run_id, program, terms_id)
);

-- Per run, program and version: the rate of each product class in each period bucket of usage
-- dates (see sqlstore's rate plan). A class and bucket without a row earns nothing and does not
-- count toward thresholds.
CREATE TABLE run_rates (
  run_id   bigint  NOT NULL,
  program  text    NOT NULL,
  terms_id text    NOT NULL,
  class    integer NOT NULL,
  bucket   integer NOT NULL,
  rate     numeric NOT NULL,
  PRIMARY KEY (run_id, program, terms_id, class, bucket)
);

-- The aggregates now carry the version each referral and template binds to and the exact
-- earnings of its usage under that version's rates.
ALTER TABLE run_referrals
  ADD COLUMN terms_id text,                 -- Referral Program version, NULL: none
  ADD COLUMN earned_usd numeric NOT NULL DEFAULT 0,
  ADD COLUMN serverless_terms_id text;      -- Serverless Referral Program version
ALTER TABLE run_templates
  ADD COLUMN terms_id text,
  ADD COLUMN earned_usd numeric NOT NULL DEFAULT 0;

-- Runs before terms: the built-in seed terms from their parameters, so that their reports can
-- be rendered again. Their aggregates bind every referral and template to `seed`.
INSERT INTO run_terms (run_id, program, terms_id, valid_from, valid_to, enabled, window_months, window_days)
SELECT r.id, p.program, 'seed', '-infinity', 'infinity', coalesce((r.parameters -> p.program ->> 'enabled')::boolean, true), 0, 0
  FROM recon_runs r
 CROSS JOIN (VALUES ('referral'), ('template'), ('serverless_referral')) AS p (program);
UPDATE run_referrals a
   SET terms_id = 'seed', serverless_terms_id = 'seed',
       earned_usd = a.spend_usd * coalesce((r.parameters -> 'referral' ->> 'rate')::numeric, 0.02)
  FROM recon_runs r WHERE r.id = a.run_id;
UPDATE run_templates a
   SET terms_id = 'seed', earned_usd = a.spend_usd * coalesce((r.parameters -> 'template' ->> 'rate')::numeric, 0.01)
  FROM recon_runs r WHERE r.id = a.run_id;
UPDATE recon_runs SET usage_cutoff = as_of;

-- The end of a window that starts at start: months as interval 'N months' adds them in UTC, days
-- of 24 hours, neither: never (lifetime); NULL when any argument is (no version). Not declared
-- STRICT, so that the planner inlines it: a run evaluates it for every usage row.
CREATE FUNCTION creditrecon_window_end(start timestamptz, months integer, days integer) RETURNS timestamptz
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN CASE WHEN start IS NULL OR months IS NULL OR days IS NULL THEN NULL
              WHEN months > 0 THEN ((start AT TIME ZONE 'UTC') + make_interval(months => months)) AT TIME ZONE 'UTC'
              WHEN days > 0 THEN start + make_interval(hours => 24 * days)
              ELSE 'infinity'::timestamptz END;

-- Whether a referral made at referred_at of a user created at created_at is of a new account
-- under a version's max_account_age (NULL: every account is).
CREATE FUNCTION creditrecon_new_account(created_at timestamptz, referred_at timestamptz, max_age interval) RETURNS boolean
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN max_age IS NULL OR created_at >= referred_at - max_age;

-- +goose Down
-- Only a ledger whose grants are all of version seed can go down.
DROP FUNCTION creditrecon_new_account(timestamptz, timestamptz, interval);
DROP FUNCTION creditrecon_window_end(timestamptz, integer, integer);
ALTER TABLE run_templates DROP COLUMN terms_id, DROP COLUMN earned_usd;
ALTER TABLE run_referrals DROP COLUMN terms_id, DROP COLUMN earned_usd, DROP COLUMN serverless_terms_id;
DROP TABLE run_rates;
DROP TABLE run_terms;
ALTER TABLE recon_runs DROP COLUMN terms, DROP COLUMN allow_retroactive, DROP COLUMN usage_cutoff;
DROP TABLE terms_versions;
DROP FUNCTION terms_versions_append_only();
ALTER TABLE credit_accounts DROP CONSTRAINT credit_accounts_pkey;
ALTER TABLE credit_accounts DROP COLUMN terms_id;
ALTER TABLE credit_accounts ADD PRIMARY KEY (program, account_id, role);
DROP INDEX credit_grants_chain;
ALTER TABLE credit_grants DROP COLUMN terms_id;
CREATE UNIQUE INDEX credit_grants_chain ON credit_grants (program, account_id, role, granted_before_usd);
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION credit_grants_check_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  before numeric;
BEGIN
  SELECT coalesce(sum(amount_usd), 0) INTO before FROM credit_grants
   WHERE program = NEW.program AND account_id = NEW.account_id AND role = NEW.role;
  IF before <> NEW.granted_before_usd THEN
    RAISE EXCEPTION 'grant % breaks its account chain: granted before is %, the row says %',
      NEW.idempotency_key, before, NEW.granted_before_usd USING ERRCODE = 'unique_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE OR REPLACE FUNCTION credit_accounts_add() RETURNS trigger LANGUAGE plpgsql
  SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
  INSERT INTO credit_accounts AS a (program, account_id, role, beneficiary_id, grants, granted_usd)
  SELECT program, account_id, role, max(beneficiary_id), count(*), sum(amount_usd)
    FROM new_grants
   GROUP BY program, account_id, role
  ON CONFLICT (program, account_id, role) DO UPDATE
    SET beneficiary_id = greatest(a.beneficiary_id, excluded.beneficiary_id),
        grants = a.grants + excluded.grants,
        granted_usd = a.granted_usd + excluded.granted_usd;
  RETURN NULL;
END $$;
-- +goose StatementEnd
