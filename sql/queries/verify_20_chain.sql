-- verify (a): every grant's granted_before_usd is the sum of its account's earlier grants (by id),
-- the chain the credit_grants_chain trigger enforces on insert.
WITH chain AS (
  SELECT id, program, terms_id, account_id, role, granted_before_usd,
         coalesce(sum(amount_usd) OVER (PARTITION BY program, terms_id, account_id, role ORDER BY id
                                        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
    FROM credit_grants
), bad AS (
  SELECT id, 'grant ' || id || ' (' || program || CASE WHEN terms_id <> 'seed' THEN '@' || terms_id ELSE '' END || ':' || account_id || CASE WHEN role <> '' THEN '/' || role ELSE '' END ||
         ') says ' || granted_before_usd::text || ' granted before, its earlier grants sum to ' || before::text AS example
    FROM chain
   WHERE before <> granted_before_usd
)
SELECT 'chain' AS name, 'account chains consistent (granted_before = earlier grants)' AS title,
       (SELECT count(*) FROM credit_grants) AS checked,
       count(*) AS failed,
       coalesce((array_agg(example ORDER BY id))[1:5], '{}') AS examples
  FROM bad;
