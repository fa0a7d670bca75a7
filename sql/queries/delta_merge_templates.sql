-- Run $1's template aggregates: base run $2's plus the delta's, aggregated under scratch run $3.
INSERT INTO run_templates (run_id, template_id, creator_id, usage_rows, runtime_seconds, spend_usd)
SELECT $1, template_id, creator_id, sum(usage_rows), sum(runtime_seconds), sum(spend_usd)
  FROM run_templates
 WHERE run_id IN ($2, $3)
 GROUP BY template_id, creator_id;
