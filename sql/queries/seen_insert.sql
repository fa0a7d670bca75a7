-- The rows ingested since $2 that incremental run $1 saw before its cutoff $3, from the usage it
-- read (run_delta): the next run folds in those of them it does not find here. (A full run finds
-- them in its anomaly pass.) The columns are run_seen's.
SELECT $1::bigint AS run_id, e.id AS usage_event_id FROM run_delta e WHERE e.ingested_at >= $2 AND e.occurred_at < $3
