-- The anomalies of runs $1, each usage row once (the shards of a night each find them all),
-- with the reason the newest run gave.
SELECT DISTINCT ON (usage_event_id) usage_event_id AS id, reason, user_id, product, coalesce(template_id, '') AS template_id, amount_usd,
       CASE WHEN isfinite(occurred_at) THEN occurred_at END AS occurred_at
  FROM run_anomalies
 WHERE run_id = ANY($1)
 ORDER BY usage_event_id, run_id DESC;
