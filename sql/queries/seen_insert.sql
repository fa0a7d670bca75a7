-- The rows ingested since $2 that run $1 saw before its cutoff $3: the next run folds in those
-- of them it does not find here.
INSERT INTO run_seen (run_id, usage_event_id)
SELECT $1, id FROM {{usage}} e WHERE ingested_at >= $2 AND occurred_at < $3;
