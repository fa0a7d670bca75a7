-- A leaner per-referral pass over usage (sqlstore's aggregate_referrals).
--
-- Which usage counts toward a Serverless Referral Program bonus is a per-referral filter, no
-- longer a product class of the rate plan: with the built-in terms the referral side then has a
-- single class, and the pass sums one group per referral instead of two. run_terms records each
-- serverless and template version's products and each serverless version's usage_from; each
-- binding carries its serverless version's products and where its serverless usage starts.
--
-- The window and new-account functions do timestamptz ± interval arithmetic, which PostgreSQL
-- marks STABLE. Declared IMMUTABLE, they were never inlined, and each call went through the SQL
-- function executor (about 2 µs: a quarter of a second of a run's bindings at 17,000 referrals).
-- Declared STABLE, the planner inlines their bodies into the queries that call them. What they
-- return does not change: the arithmetic is in UTC or in whole hours.

-- The bindings serve only the passes of the run that writes them: the run deletes them before it
-- commits, they need no write-ahead log (UNLOGGED: parallel workers can still read the table,
-- unlike a temporary one) and no primary key (each referral is bound once by construction). Kept
-- per run and logged, they cost 0.7 s to write and 0.3 s to analyze at 58,000 referrals, and
-- grew by a row per referral every night.

-- The account chain check (a row trigger on credit_grants) sums the account's earlier grants,
-- which credit_grants_chain indexes. PL/pgSQL caches its plan: made while the ledger was empty
-- (the first run, or a new program's first grants), the cached plan scanned the whole table for
-- every row inserted, and the first run under RunPod's 2025 terms spent 28 s writing 16,000
-- grants. With sequential scans off for the function, the plan is the index at any size.

-- +goose Up
ALTER TABLE run_terms
  ADD COLUMN products   text[],      -- serverless and template versions: the products that count
  ADD COLUMN usage_from timestamptz; -- serverless versions: usage before it does not count
TRUNCATE run_bindings;
ALTER TABLE run_bindings
  DROP CONSTRAINT run_bindings_pkey,
  ADD COLUMN serverless_products text[],
  ADD COLUMN serverless_from     timestamptz,
  SET UNLOGGED;
ALTER FUNCTION creditrecon_window_end(timestamptz, integer, integer) STABLE;
ALTER FUNCTION creditrecon_new_account(timestamptz, timestamptz, interval) STABLE;
ALTER FUNCTION credit_grants_check_chain() SET enable_seqscan = off;

-- +goose Down
ALTER FUNCTION credit_grants_check_chain() RESET enable_seqscan;
ALTER FUNCTION creditrecon_new_account(timestamptz, timestamptz, interval) IMMUTABLE;
ALTER FUNCTION creditrecon_window_end(timestamptz, integer, integer) IMMUTABLE;
ALTER TABLE run_bindings DROP COLUMN serverless_from, DROP COLUMN serverless_products,
  ADD PRIMARY KEY (run_id, referred_user_id), SET LOGGED;
ALTER TABLE run_terms DROP COLUMN usage_from, DROP COLUMN products;
