-- Template Program accounts of runs $1 as of their cutoff $2 (SPEC 2.3, 7.2), with their terms
-- version and grants. $3 only templates of this creator (NULL: all); $4/$5 only the templates of
-- this shard (count 1: all). The aggregates name each template's version.
WITH later AS (
  -- Grants after the cutoff (a backfill's view of an older cutoff), to take off the totals.
  SELECT program, terms_id, account_id, role, sum(amount_usd) AS later
    FROM credit_grants
   WHERE as_of > $2
   GROUP BY program, terms_id, account_id, role
), granted AS (
  SELECT a.account_id AS template_id, a.terms_id, a.beneficiary_id, a.granted_usd AS granted,
         a.granted_usd - coalesce(l.later, 0) AS granted_as_of
    FROM credit_accounts a
    LEFT JOIN later l USING (program, terms_id, account_id, role)
   WHERE a.program = 'template' AND ($3::text IS NULL OR a.beneficiary_id = $3)
     AND ($4::integer = 1 OR creditrecon_shard(a.account_id, $4) = $5)
), spend AS (
  SELECT template_id, terms_id, creator_id, usage_rows, runtime_seconds, spend_usd, earned_usd
    FROM run_templates
   WHERE run_id = ANY($1) AND ($3::text IS NULL OR creator_id = $3)
     AND ($4::integer = 1 OR creditrecon_shard(template_id, $4) = $5)
)
SELECT template_id, terms_id,
       coalesce(s.creator_id, t.creator_id, g.beneficiary_id) AS creator_id,
       coalesce(s.usage_rows, 0) AS usage_rows,
       coalesce(s.runtime_seconds, 0) AS runtime_seconds,
       coalesce(s.spend_usd, 0) AS spend,
       coalesce(s.earned_usd, 0) AS earned,
       coalesce(g.granted, 0) AS granted,
       coalesce(g.granted_as_of, 0) AS granted_as_of
  FROM spend s
  FULL JOIN granted g USING (template_id, terms_id)
  LEFT JOIN templates t ON t.id = template_id
 ORDER BY template_id COLLATE "C", terms_id COLLATE "C";
