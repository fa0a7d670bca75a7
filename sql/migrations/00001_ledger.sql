-- Job-owned tables of SPEC 3.2: the run ledger, the grants ledger and Referral Program acceptances.

-- +goose Up
CREATE TABLE recon_runs (
  id             bigserial PRIMARY KEY,
  kind           text        NOT NULL CHECK (kind IN ('run', 'backfill')),
  as_of          timestamptz NOT NULL,
  status         text        NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'abandoned')),
  started_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
  finished_at    timestamptz,
  backend_pid    integer     NOT NULL DEFAULT pg_backend_pid(),
  host           text        NOT NULL DEFAULT '',
  version        text        NOT NULL DEFAULT '',
  parameters     jsonb       NOT NULL,
  usage_rows     bigint,
  anomalies      bigint,
  grants_written integer,
  amount_granted numeric(14,2),
  totals         jsonb,
  grants_committed_at timestamptz,
  error          text
);
CREATE INDEX recon_runs_as_of ON recon_runs (as_of, id);
CREATE INDEX recon_runs_running ON recon_runs (id) WHERE status = 'running';

CREATE TABLE credit_grants (
  id                 bigserial     PRIMARY KEY,
  idempotency_key    text          NOT NULL UNIQUE,
  program            text          NOT NULL CHECK (program IN ('serverless_referral', 'referral', 'template')),
  account_id         text          NOT NULL,
  role               text          NOT NULL DEFAULT '' CHECK (role IN ('', 'referrer', 'referred')),
  beneficiary_id     text          NOT NULL,
  template_id        text,
  referred_user_id   text,
  amount_usd         numeric(14,2) NOT NULL CHECK (amount_usd > 0),
  granted_before_usd numeric(14,2) NOT NULL CHECK (granted_before_usd >= 0),
  spend_usd          numeric       NOT NULL,
  earned_usd         numeric       NOT NULL,
  as_of              timestamptz   NOT NULL,
  run_id             bigint        NOT NULL REFERENCES recon_runs (id),
  created_at         timestamptz   NOT NULL DEFAULT now()
);
-- A second unique key over the same chain: an account's grants are numbered by what was granted
-- before each, so two writers that start from the same state cannot both write.
CREATE UNIQUE INDEX credit_grants_chain ON credit_grants (program, account_id, role, granted_before_usd);
CREATE INDEX credit_grants_as_of ON credit_grants (as_of);
CREATE INDEX credit_grants_beneficiary ON credit_grants (beneficiary_id);
CREATE INDEX credit_grants_run ON credit_grants (run_id);

-- Grants are append-only, enforced by the database whoever connects: a grant can be neither
-- changed nor removed, and a new grant must continue its account's chain exactly.
-- +goose StatementBegin
CREATE FUNCTION credit_grants_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'credit_grants is append-only: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$;
-- +goose StatementEnd
CREATE TRIGGER credit_grants_no_update BEFORE UPDATE OR DELETE ON credit_grants
  FOR EACH ROW EXECUTE FUNCTION credit_grants_append_only();
CREATE TRIGGER credit_grants_no_truncate BEFORE TRUNCATE ON credit_grants
  FOR EACH STATEMENT EXECUTE FUNCTION credit_grants_append_only();

-- +goose StatementBegin
CREATE FUNCTION credit_grants_check_chain() RETURNS trigger LANGUAGE plpgsql AS $$
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
-- +goose StatementEnd
CREATE TRIGGER credit_grants_chain BEFORE INSERT ON credit_grants
  FOR EACH ROW EXECUTE FUNCTION credit_grants_check_chain();

CREATE TABLE referral_acceptances (
  referrer_id text        PRIMARY KEY,
  accepted_at timestamptz NOT NULL DEFAULT now(),
  accepted_by text        NOT NULL CHECK (accepted_by <> ''),
  note        text        NOT NULL DEFAULT ''
);

-- +goose Down
DROP TABLE referral_acceptances;
DROP TABLE credit_grants;
DROP FUNCTION credit_grants_check_chain();
DROP FUNCTION credit_grants_append_only();
DROP TABLE recon_runs;
