-- Template Program accounts of runs $1 as of their cutoff $2 (SPEC 2.3), with their grants.
-- $3 only templates of this creator (NULL: all); $4/$5 only the templates of this shard (count
-- 1: all).
WITH granted AS (
  SELECT account_id AS template_id, max(beneficiary_id) AS beneficiary_id, sum(amount_usd) AS granted,
         coalesce(sum(amount_usd) FILTER (WHERE as_of <= $2), 0) AS granted_as_of
    FROM credit_grants
   WHERE program = 'template' AND ($3::text IS NULL OR beneficiary_id = $3)
     AND ($4::integer = 1 OR creditrecon_shard(account_id, $4) = $5)
   GROUP BY account_id
), spend AS (
  SELECT template_id, creator_id, usage_rows, runtime_seconds, spend_usd
    FROM run_templates
   WHERE run_id = ANY($1) AND ($3::text IS NULL OR creator_id = $3)
     AND ($4::integer = 1 OR creditrecon_shard(template_id, $4) = $5)
)
SELECT template_id,
       coalesce(s.creator_id, t.creator_id, g.beneficiary_id) AS creator_id,
       coalesce(s.usage_rows, 0) AS usage_rows,
       coalesce(s.runtime_seconds, 0) AS runtime_seconds,
       coalesce(s.spend_usd, 0) AS spend,
       coalesce(g.granted, 0) AS granted,
       coalesce(g.granted_as_of, 0) AS granted_as_of
  FROM spend s
  FULL JOIN granted g USING (template_id)
  LEFT JOIN templates t ON t.id = template_id
 ORDER BY template_id COLLATE "C";
