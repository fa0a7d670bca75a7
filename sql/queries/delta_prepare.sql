-- The usage an incremental run reads: rows before cutoff $1 that base run $3 (cutoff $2) did not
-- count — those from its cutoff on, and those ingested since $4 it did not see (late rows,
-- including rows in flight when it read) — and the rows dated beyond $5, the believable future.
CREATE TEMP TABLE run_delta ON COMMIT DROP AS
SELECT e.id, e.user_id, e.product, e.template_id, e.amount_usd, e.runtime_seconds, e.occurred_at
  FROM usage_events e
 WHERE (e.occurred_at < $1
        AND (e.occurred_at >= $2
             OR (e.ingested_at >= $4
                 AND NOT EXISTS (SELECT FROM run_seen s WHERE s.run_id = $3 AND s.usage_event_id = e.id))))
    OR e.occurred_at > $5;
