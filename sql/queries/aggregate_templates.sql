-- Per template as of cutoff $2 (SPEC 2.3): pod and serverless usage on the template from the
-- program's start $3, the creator's own usage excluded. $1 run; {{usage}} as in anomalies_prepare.
-- $4/$5 the shard count/index: a shard keeps its templates. The columns are run_templates'.
SELECT $1::bigint AS run_id, t.id AS template_id, t.creator_id, count(*) AS usage_rows,
       sum(e.runtime_seconds) AS runtime_seconds, sum(e.amount_usd) AS spend_usd
  FROM templates t
  JOIN {{usage}} e ON e.template_id = t.id
 WHERE e.product IN ('pod', 'serverless') AND e.user_id <> t.creator_id
   AND e.occurred_at < $2 AND e.occurred_at >= $3
   AND ($4::integer = 1 OR creditrecon_shard(t.id, $4) = $5)
   AND NOT EXISTS (SELECT FROM run_anomalies a WHERE a.run_id = $1 AND a.usage_event_id = e.id)
 GROUP BY t.id, t.creator_id;
