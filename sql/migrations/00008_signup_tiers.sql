-- RunPod's 2025 programs (SPEC 8): the signup bonus, a fourth program whose amounts may be drawn,
-- and partner tiers, whose grants may be paid in cash. Grants say how they are paid and, for a
-- drawn bonus, the draw; runs record the SHA-256 of the draw secret they used (never the secret);
-- enrollments into a tier are append-only like acceptances.

-- +goose Up
ALTER TABLE credit_grants DROP CONSTRAINT credit_grants_program_check;
ALTER TABLE credit_grants ADD CONSTRAINT credit_grants_program_check
  CHECK (program IN ('serverless_referral', 'referral', 'template', 'signup_bonus'));
ALTER TABLE credit_grants
  ADD COLUMN payout     text NOT NULL DEFAULT 'credits' CHECK (payout IN ('credits', 'cash')),
  ADD COLUMN bonus_kind text CHECK (bonus_kind IN ('fixed', 'draw')),
  ADD COLUMN draw_u     numeric CHECK (draw_u >= 0 AND draw_u < 1),
  ADD COLUMN draw_entry integer CHECK (draw_entry >= 0),
  ADD CONSTRAINT credit_grants_draw CHECK ((bonus_kind = 'draw') = (draw_u IS NOT NULL AND draw_entry IS NOT NULL));
ALTER TABLE terms_versions DROP CONSTRAINT terms_versions_program_check;
ALTER TABLE terms_versions ADD CONSTRAINT terms_versions_program_check
  CHECK (program IN ('serverless_referral', 'referral', 'template', 'signup_bonus'));
ALTER TABLE recon_runs ADD COLUMN draw_secret_sha256 text;

CREATE TABLE partner_enrollments (
  referrer_id   text        PRIMARY KEY,
  tier          text        NOT NULL,
  enrolled_from timestamptz NOT NULL,
  enrolled_at   timestamptz NOT NULL DEFAULT now(),
  enrolled_by   text        NOT NULL CHECK (enrolled_by <> ''),
  note          text        NOT NULL DEFAULT ''
);
-- +goose StatementBegin
CREATE FUNCTION partner_enrollments_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'partner_enrollments is append-only: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$;
-- +goose StatementEnd
CREATE TRIGGER partner_enrollments_no_update BEFORE UPDATE OR DELETE ON partner_enrollments
  FOR EACH ROW EXECUTE FUNCTION partner_enrollments_append_only();
CREATE TRIGGER partner_enrollments_no_truncate BEFORE TRUNCATE ON partner_enrollments
  FOR EACH STATEMENT EXECUTE FUNCTION partner_enrollments_append_only();

-- A referral's usage routed to its referrer's partner tier (from the enrollment, inside the tier's
-- window): rows, spend and exact earnings under the tier's rates.
ALTER TABLE run_referrals
  ADD COLUMN tier_terms_id   text,
  ADD COLUMN tier_rows       bigint  NOT NULL DEFAULT 0,
  ADD COLUMN tier_spend_usd  numeric NOT NULL DEFAULT 0,
  ADD COLUMN tier_earned_usd numeric NOT NULL DEFAULT 0;

-- Per run, every referral bound to a signup bonus version (and counted as a new account): the
-- referred user's loads since the referral as of the cutoff, and both recipients' countries.
-- Loads are few: every run reads them whole, so a late load counts exactly once.
CREATE TABLE run_signups (
  run_id           bigint  NOT NULL,
  referred_user_id text    NOT NULL,
  referrer_id      text    NOT NULL,
  terms_id         text    NOT NULL,
  loads_usd        numeric NOT NULL,
  referrer_country text,
  referred_country text,
  PRIMARY KEY (run_id, referred_user_id)
);

-- Per run, each referral before its usage cutoff with the versions it binds to and where each
-- program's window of it ends (NULL: it counts for nothing there), computed once per referral so
-- that the aggregate over millions of usage rows only compares times. A regular table, which the
-- parallel workers of the aggregate can read.
CREATE TABLE run_bindings (
  run_id              bigint      NOT NULL,
  referred_user_id    text        NOT NULL,
  referrer_id         text        NOT NULL,
  referred_at         timestamptz NOT NULL,
  terms_id            text,
  serverless_terms_id text,
  tier_terms_id       text,
  ends                timestamptz,
  serverless_ends     timestamptz,
  tier_from           timestamptz,
  tier_ends           timestamptz,
  PRIMARY KEY (run_id, referred_user_id)
);

-- +goose Down
DROP TABLE run_bindings;
DROP TABLE run_signups;
ALTER TABLE run_referrals DROP COLUMN tier_terms_id, DROP COLUMN tier_rows, DROP COLUMN tier_spend_usd, DROP COLUMN tier_earned_usd;
DROP TABLE partner_enrollments;
DROP FUNCTION partner_enrollments_append_only();
ALTER TABLE recon_runs DROP COLUMN draw_secret_sha256;
ALTER TABLE terms_versions DROP CONSTRAINT terms_versions_program_check;
ALTER TABLE terms_versions ADD CONSTRAINT terms_versions_program_check
  CHECK (program IN ('serverless_referral', 'referral', 'template'));
ALTER TABLE credit_grants DROP CONSTRAINT credit_grants_draw, DROP COLUMN payout, DROP COLUMN bonus_kind, DROP COLUMN draw_u,
  DROP COLUMN draw_entry;
ALTER TABLE credit_grants DROP CONSTRAINT credit_grants_program_check;
ALTER TABLE credit_grants ADD CONSTRAINT credit_grants_program_check
  CHECK (program IN ('serverless_referral', 'referral', 'template'));
