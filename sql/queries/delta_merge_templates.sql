-- Run $1's template aggregates: base run $2's plus the delta's, aggregated under scratch run $3
-- with the same terms. $4/$5 the run's shard count/index: a shard extending an unsharded base
-- keeps its templates. One row per template in each run, joined and added as in
-- delta_merge_referrals.
INSERT INTO run_templates (run_id, template_id, creator_id, usage_rows, runtime_seconds, spend_usd, terms_id, earned_usd)
SELECT $1, template_id, coalesce(b.creator_id, d.creator_id),
       coalesce(b.usage_rows, 0) + coalesce(d.usage_rows, 0), coalesce(b.runtime_seconds, 0) + coalesce(d.runtime_seconds, 0),
       coalesce(b.spend_usd, 0) + coalesce(d.spend_usd, 0), coalesce(b.terms_id, d.terms_id),
       coalesce(b.earned_usd, 0) + coalesce(d.earned_usd, 0)
  FROM (SELECT * FROM run_templates WHERE run_id = $2) b
  FULL JOIN (SELECT * FROM run_templates WHERE run_id = $3) d USING (template_id)
 WHERE $4::integer = 1 OR creditrecon_shard(template_id, $4) = $5;
