-- What a run needs to be the base of the next one: the next run folds into this run's aggregates
-- only the usage rows this run did not see, instead of reading the whole history again.

-- +goose Up
ALTER TABLE recon_runs
  ADD COLUMN mode              text CHECK (mode IN ('full', 'incremental')),
  ADD COLUMN base_run_id       bigint REFERENCES recon_runs (id),
  ADD COLUMN snapshot_at       timestamptz,
  -- Rows ingested from seen_since on may have been invisible to the run (in flight); the ids of
  -- those it saw are in run_seen. Rows ingested before were all visible to it.
  ADD COLUMN seen_since        timestamptz,
  ADD COLUMN considered_before bigint,      -- usage rows with occurred_at < as_of it considered
  ADD COLUMN fingerprint       text,        -- of the referrals and templates as of as_of
  ADD COLUMN aggregate_input   jsonb;       -- program starts and amount limit of its aggregates

CREATE TABLE run_seen (
  run_id         bigint NOT NULL,
  usage_event_id bigint NOT NULL,
  PRIMARY KEY (run_id, usage_event_id)
);

-- +goose Down
DROP TABLE run_seen;
ALTER TABLE recon_runs DROP COLUMN mode, DROP COLUMN base_run_id, DROP COLUMN snapshot_at,
  DROP COLUMN seen_since, DROP COLUMN considered_before, DROP COLUMN fingerprint, DROP COLUMN aggregate_input;
