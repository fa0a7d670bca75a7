-- The rows ingested since $2 that run $1 saw before its cutoff $3: the next run folds in those
-- of them it does not find here. The columns are run_seen's.
SELECT $1::bigint AS run_id, e.id AS usage_event_id FROM {{usage}} e WHERE e.ingested_at >= $2 AND e.occurred_at < $3
