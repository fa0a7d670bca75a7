-- Run $1's anomalies: base run $2's before its cutoff $4 (its future-dated ones are found again
-- in the delta) and the delta's, found under scratch run $3.
INSERT INTO run_anomalies (run_id, usage_event_id, reason, user_id, product, template_id, amount_usd, occurred_at)
SELECT $1, usage_event_id, reason, user_id, product, template_id, amount_usd, occurred_at
  FROM run_anomalies
 WHERE run_id = $3 OR (run_id = $2 AND occurred_at < $4);
