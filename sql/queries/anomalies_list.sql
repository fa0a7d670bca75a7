SELECT id, reason, user_id, product, coalesce(template_id, '') AS template_id, amount_usd, occurred_at
  FROM run_anomalies
 ORDER BY id;
