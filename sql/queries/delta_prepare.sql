-- The usage an incremental run reads, in one scan: rows before cutoff $1 that base run $3 (cutoff
-- $2) did not count — those from its cutoff on, and those ingested since $4 it did not see (late
-- rows, including rows in flight when it read) — and the rows dated beyond $5, the believable
-- future: those are "counted". With them come the rows ingested since $6, this run's own
-- seen_since, which the next run must know this run saw. The WHERE clause is a plain OR of ranges
-- so that indexes on usage_events (occurred_at) and (ingested_at), where they exist, replace the
-- full scan.
CREATE TEMP TABLE run_delta ON COMMIT DROP AS
SELECT e.id, e.user_id, e.product, e.template_id, e.amount_usd, e.runtime_seconds, e.occurred_at, e.ingested_at,
       (e.occurred_at < $1
        AND (e.occurred_at >= $2
             OR (e.ingested_at >= $4
                 AND NOT EXISTS (SELECT FROM run_seen s WHERE s.run_id = $3 AND s.usage_event_id = e.id))))
       OR e.occurred_at > $5 AS counted
  FROM usage_events e
 WHERE (e.occurred_at >= $2 AND e.occurred_at < $1)
    OR e.occurred_at > $5
    OR e.ingested_at >= least($4::timestamptz, $6::timestamptz);
