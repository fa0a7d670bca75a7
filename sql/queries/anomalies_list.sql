SELECT usage_event_id AS id, reason, user_id, product, coalesce(template_id, '') AS template_id, amount_usd,
       CASE WHEN isfinite(occurred_at) THEN occurred_at END AS occurred_at
  FROM run_anomalies
 WHERE run_id = $1
 ORDER BY usage_event_id;
