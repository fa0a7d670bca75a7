-- Template Program aggregates per template as of cutoff $1 (SPEC 2.3): pod and serverless usage
-- on the template, the creator's own usage excluded. $2 program start, $3 only templates of this
-- creator (NULL: all).
WITH tpl AS (
  SELECT id, creator_id FROM templates WHERE ($3::text IS NULL OR creator_id = $3)
), spend AS (
  SELECT t.id AS template_id, count(*) AS usage_rows,
         sum(e.runtime_seconds) AS runtime_seconds, sum(e.amount_usd) AS spend
    FROM tpl t
    JOIN usage_events e ON e.template_id = t.id
   WHERE e.product IN ('pod', 'serverless') AND e.user_id <> t.creator_id
     AND e.occurred_at < $1 AND e.occurred_at >= $2
     AND NOT EXISTS (SELECT 1 FROM run_anomalies a WHERE a.id = e.id)
   GROUP BY t.id
), granted AS (
  SELECT account_id AS template_id, max(beneficiary_id) AS beneficiary_id, sum(amount_usd) AS granted,
         coalesce(sum(amount_usd) FILTER (WHERE as_of <= $1), 0) AS granted_as_of
    FROM credit_grants
   WHERE program = 'template' AND ($3::text IS NULL OR beneficiary_id = $3)
   GROUP BY account_id
)
SELECT template_id,
       coalesce(t.creator_id, g.beneficiary_id) AS creator_id,
       coalesce(s.usage_rows, 0) AS usage_rows,
       coalesce(s.runtime_seconds, 0) AS runtime_seconds,
       coalesce(s.spend, 0) AS spend,
       coalesce(g.granted, 0) AS granted,
       coalesce(g.granted_as_of, 0) AS granted_as_of
  FROM spend s
  FULL JOIN granted g USING (template_id)
  LEFT JOIN templates t ON t.id = template_id
 ORDER BY template_id COLLATE "C";
