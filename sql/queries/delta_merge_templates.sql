-- Run $1's template aggregates: base run $2's plus the delta's, aggregated under scratch run $3
-- with the same terms. $4/$5 the run's shard count/index: a shard extending an unsharded base
-- keeps its templates.
INSERT INTO run_templates (run_id, template_id, creator_id, usage_rows, runtime_seconds, spend_usd, terms_id, earned_usd)
SELECT $1, template_id, creator_id, sum(usage_rows), sum(runtime_seconds), sum(spend_usd), terms_id, sum(earned_usd)
  FROM run_templates
 WHERE run_id IN ($2, $3)
   AND ($4::integer = 1 OR creditrecon_shard(template_id, $4) = $5)
 GROUP BY template_id, creator_id, terms_id;
