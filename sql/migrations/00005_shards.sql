-- Sharded runs: `creditrecon run --shard I/N` processes the accounts whose id hashes to shard I
-- of N, so that an Indexed Job can spread a night over N pods. The ledger records each run's
-- shard; an unsharded run has neither column.

-- +goose Up
ALTER TABLE recon_runs
  ADD COLUMN shard_index integer,
  ADD COLUMN shard_count integer,
  ADD CONSTRAINT recon_runs_shard CHECK ((shard_index IS NULL AND shard_count IS NULL)
    OR (shard_count > 1 AND shard_index >= 0 AND shard_index < shard_count));

-- The shard of an account id among n: stable across platforms and releases (PostgreSQL's
-- extended text hash, the one hash partitioning uses), and inlined into the queries.
CREATE FUNCTION creditrecon_shard(account text, n integer) RETURNS integer
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  RETURN ((hashtextextended(account, 0) & 9223372036854775807) % n)::integer;

-- +goose Down
DROP FUNCTION creditrecon_shard(text, integer);
ALTER TABLE recon_runs DROP CONSTRAINT recon_runs_shard, DROP COLUMN shard_count, DROP COLUMN shard_index;
