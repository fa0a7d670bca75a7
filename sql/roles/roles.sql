-- creditrecon's least-privilege roles (README "Least privilege"). A DBA applies this file; the job
-- never does (`creditrecon migrate` only creates the job-owned tables). It is idempotent: apply it
-- before the first `creditrecon migrate` (it creates the roles and the schema privileges), and
-- again after every migrate that adds tables (it grants on the job-owned tables that exist).
--
--   psql "$ADMIN_DATABASE_URL" -v ON_ERROR_STOP=1 -f sql/roles/roles.sql
--
-- Run it connected to the billing database, with the job-owned tables' schema first in search_path
-- (public by default), as a superuser or, where there is none (Amazon RDS), as a role with
-- CREATEROLE that owns the source tables and is a member of creditrecon_owner once it exists.
--
-- Four group roles, none of which can log in:
--
--   creditrecon_owner     owns the job-owned tables; the login that runs `creditrecon migrate`
--   creditrecon_job       the nightly `creditrecon run`: reads the source tables, appends grants,
--                         writes its run ledger; can never change or remove a grant
--   creditrecon_operator  creditrecon_job plus recording acceptances (`creditrecon accept`); also
--                         for backfill, export, explain and verify
--   creditrecon_finance   read-only SQL on the job-owned and the source tables, and `creditrecon
--                         runs`; not explain or verify, which write scratch aggregates they roll back
--
-- Login users are created by the DBA and put in one of them, e.g.:
--
--   CREATE ROLE creditrecon_migrator LOGIN PASSWORD '...' IN ROLE creditrecon_owner;
--   ALTER ROLE creditrecon_migrator SET role = 'creditrecon_owner';  -- what it creates belongs to the group
--   CREATE ROLE nightly LOGIN PASSWORD '...' IN ROLE creditrecon_job;
--   CREATE ROLE ops_alice LOGIN PASSWORD '...' IN ROLE creditrecon_operator;
--   CREATE ROLE finance_bi LOGIN PASSWORD '...' IN ROLE creditrecon_finance;
--
-- The database itself keeps grants append-only whoever connects (the triggers of migration 00001
-- reject UPDATE, DELETE and TRUNCATE of credit_grants, even by the owner); the privileges below
-- make the job's own connection unable to even try. The owner could still drop those triggers:
-- keep its credentials for migrations only.
--
-- On PostgreSQL 14 and older, PUBLIC may CREATE in schema public. This file does not change that
-- (other applications may rely on it); to keep the job roles from creating tables there, run
-- REVOKE CREATE ON SCHEMA public FROM PUBLIC once you know nothing else needs it.

DO $roles$
DECLARE
  r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['creditrecon_owner', 'creditrecon_job', 'creditrecon_operator', 'creditrecon_finance'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
      EXECUTE format('CREATE ROLE %I NOLOGIN', r);
    END IF;
  END LOOP;
END
$roles$;

-- An operator can do everything the nightly job does (backfills, re-runs), and accept referrers.
GRANT creditrecon_job TO creditrecon_operator;

-- The database and schema: connect, create temporary tables (a run folds new usage in through
-- one), and, for the owner only, create tables.
DO $schema$
BEGIN
  EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO creditrecon_owner, creditrecon_job',
                 current_database());
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO creditrecon_finance', current_database());
  EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %I TO creditrecon_owner', current_schema());
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO creditrecon_job, creditrecon_finance', current_schema());
  -- Tables and sequences that creditrecon_owner creates later (new migrations) are readable by the
  -- job and finance at once; anything more must be granted here, by name, below.
  EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE creditrecon_owner IN SCHEMA %I
                  GRANT SELECT ON TABLES TO creditrecon_job, creditrecon_finance', current_schema());
  EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE creditrecon_owner IN SCHEMA %I
                  GRANT USAGE ON SEQUENCES TO creditrecon_job', current_schema());
END
$schema$;

-- The source tables (owned by billing): read only, for the job and finance.
DO $source$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['users', 'referrals', 'templates', 'usage_events'] LOOP
    IF to_regclass(t) IS NOT NULL THEN
      EXECUTE format('GRANT SELECT ON TABLE %s TO creditrecon_job, creditrecon_finance', to_regclass(t));
      EXECUTE format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON TABLE %s
                      FROM creditrecon_job, creditrecon_operator, creditrecon_finance', to_regclass(t));
    END IF;
  END LOOP;
END
$source$;

-- The job-owned tables, once `creditrecon migrate` has created them.
DO $owned$
DECLARE
  t text;
  f text;
  seq text;
BEGIN
  -- creditrecon_owner owns them, also when an earlier migrate ran as another role.
  FOREACH t IN ARRAY ARRAY['recon_runs', 'credit_grants', 'referral_acceptances', 'creditrecon_migrations',
                           'run_anomalies', 'run_referrals', 'run_templates', 'run_seen', 'credit_accounts',
                           'terms_versions', 'run_terms', 'run_rates'] LOOP
    IF to_regclass(t) IS NOT NULL
       AND (SELECT relowner FROM pg_class WHERE oid = to_regclass(t)) <> 'creditrecon_owner'::regrole THEN
      EXECUTE format('ALTER TABLE %s OWNER TO creditrecon_owner', to_regclass(t));
    END IF;
  END LOOP;
  FOREACH f IN ARRAY ARRAY['credit_grants_append_only()', 'credit_grants_check_chain()', 'credit_accounts_add()',
                           'creditrecon_shard(text, integer)', 'terms_versions_append_only()',
                           'creditrecon_window_end(timestamptz, integer, integer)',
                           'creditrecon_new_account(timestamptz, timestamptz, interval)'] LOOP
    IF to_regprocedure(f) IS NOT NULL
       AND (SELECT proowner FROM pg_proc WHERE oid = to_regprocedure(f)) <> 'creditrecon_owner'::regrole THEN
      EXECUTE format('ALTER FUNCTION %s OWNER TO creditrecon_owner', to_regprocedure(f));
    END IF;
  END LOOP;

  -- Grants are append-only: nobody but the owner holds any privilege to change or remove one,
  -- and the owner's attempts are refused by the triggers.
  IF to_regclass('credit_grants') IS NOT NULL THEN
    REVOKE ALL ON TABLE credit_grants FROM PUBLIC;
    REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON TABLE credit_grants
      FROM creditrecon_job, creditrecon_operator, creditrecon_finance;
    GRANT SELECT, INSERT ON TABLE credit_grants TO creditrecon_job;
    GRANT SELECT ON TABLE credit_grants TO creditrecon_finance;
    seq := pg_get_serial_sequence('credit_grants', 'id');
    IF seq IS NOT NULL THEN
      EXECUTE format('GRANT USAGE ON SEQUENCE %s TO creditrecon_job', seq);
    END IF;
  END IF;

  -- Account totals: written only by credit_grants' trigger, which runs as the owner.
  IF to_regclass('credit_accounts') IS NOT NULL THEN
    REVOKE ALL ON TABLE credit_accounts FROM PUBLIC;
    REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON TABLE credit_accounts
      FROM creditrecon_job, creditrecon_operator, creditrecon_finance;
    GRANT SELECT ON TABLE credit_accounts TO creditrecon_job, creditrecon_finance;
  END IF;

  -- The terms versions in use: a run records the versions it used, once per content; nobody
  -- changes or removes one (and the owner's attempts are refused by the triggers).
  IF to_regclass('terms_versions') IS NOT NULL THEN
    REVOKE ALL ON TABLE terms_versions FROM PUBLIC;
    REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON TABLE terms_versions
      FROM creditrecon_job, creditrecon_operator, creditrecon_finance;
    GRANT SELECT, INSERT ON TABLE terms_versions TO creditrecon_job;
    GRANT SELECT ON TABLE terms_versions TO creditrecon_finance;
  END IF;

  -- The run ledger: a run inserts its row and updates it (counts, status, abandoned runs).
  IF to_regclass('recon_runs') IS NOT NULL THEN
    REVOKE ALL ON TABLE recon_runs FROM PUBLIC;
    REVOKE DELETE, TRUNCATE, REFERENCES, TRIGGER ON TABLE recon_runs
      FROM creditrecon_job, creditrecon_operator, creditrecon_finance;
    GRANT SELECT, INSERT, UPDATE ON TABLE recon_runs TO creditrecon_job;
    GRANT SELECT ON TABLE recon_runs TO creditrecon_finance;
    seq := pg_get_serial_sequence('recon_runs', 'id');
    IF seq IS NOT NULL THEN
      EXECUTE format('GRANT USAGE ON SEQUENCE %s TO creditrecon_job', seq);
    END IF;
  END IF;

  -- Acceptances: the nightly job reads them; only operators record them (`creditrecon accept` is
  -- INSERT ... ON CONFLICT DO NOTHING, then a SELECT). Nobody changes or removes one.
  IF to_regclass('referral_acceptances') IS NOT NULL THEN
    REVOKE ALL ON TABLE referral_acceptances FROM PUBLIC;
    REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON TABLE referral_acceptances
      FROM creditrecon_job, creditrecon_finance;
    REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON TABLE referral_acceptances FROM creditrecon_operator;
    GRANT SELECT ON TABLE referral_acceptances TO creditrecon_job, creditrecon_finance;
    GRANT INSERT ON TABLE referral_acceptances TO creditrecon_operator;
  END IF;

  -- A run's derived tables, named run_* by convention (run_anomalies, run_referrals,
  -- run_templates, run_seen, and any later one creditrecon_owner creates): each run writes what it
  -- read and prunes older runs' rows; dry runs write scratch rows in a transaction they roll back.
  FOR t IN SELECT c.oid::regclass::text FROM pg_class c
            WHERE c.relkind IN ('r', 'p') AND c.relnamespace = current_schema()::regnamespace
              AND c.relname LIKE 'run\_%' AND c.relowner = 'creditrecon_owner'::regrole
            ORDER BY c.relname LOOP
    EXECUTE format('REVOKE ALL ON TABLE %s FROM PUBLIC', t);
    EXECUTE format('REVOKE UPDATE, TRUNCATE, REFERENCES, TRIGGER ON TABLE %s FROM creditrecon_job, creditrecon_operator', t);
    EXECUTE format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON TABLE %s FROM creditrecon_finance', t);
    EXECUTE format('GRANT SELECT, INSERT, DELETE ON TABLE %s TO creditrecon_job', t);
    EXECUTE format('GRANT SELECT ON TABLE %s TO creditrecon_finance', t);
    -- A run ANALYZEs its anomalies; before PostgreSQL 17 only the owner may (others get a warning).
    IF current_setting('server_version_num')::int >= 170000 THEN
      EXECUTE format('GRANT MAINTAIN ON TABLE %s TO creditrecon_job', t);
    END IF;
  END LOOP;

  -- goose's version table: readable, so that `creditrecon migrate` under the job's login is a
  -- harmless check when the schema is up to date (and fails, changing nothing, when it is not).
  IF to_regclass('creditrecon_migrations') IS NOT NULL THEN
    REVOKE ALL ON TABLE creditrecon_migrations FROM PUBLIC;
    REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON TABLE creditrecon_migrations
      FROM creditrecon_job, creditrecon_operator, creditrecon_finance;
    GRANT SELECT ON TABLE creditrecon_migrations TO creditrecon_job, creditrecon_finance;
  END IF;
END
$owned$;
