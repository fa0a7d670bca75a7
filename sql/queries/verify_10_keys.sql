-- verify (a): every idempotency key is unique and names its grant (program, terms version unless
-- seed, account, role and granted_before_usd), and no two grants start from the same account state.
WITH bad AS (
  SELECT 'grants ' || string_agg(id::text, ',' ORDER BY id) || ' share key ' || idempotency_key AS example
    FROM credit_grants
   GROUP BY idempotency_key
  HAVING count(*) > 1
  UNION ALL
  SELECT 'grants ' || string_agg(id::text, ',' ORDER BY id) || ' start from the same state of ' ||
         program || CASE WHEN terms_id <> 'seed' THEN '@' || terms_id ELSE '' END || ':' || account_id ||
         CASE WHEN role <> '' THEN '/' || role ELSE '' END || ' (' || granted_before_usd::text || ' granted before)'
    FROM credit_grants
   GROUP BY program, terms_id, account_id, role, granted_before_usd
  HAVING count(*) > 1
  UNION ALL
  SELECT 'grant ' || id || ' has key ' || idempotency_key || ', which does not name its program, terms version, role and granted_before_usd'
    FROM credit_grants
   WHERE NOT (starts_with(idempotency_key, program || CASE WHEN terms_id <> 'seed' THEN '@' || terms_id ELSE '' END || ':')
              AND idempotency_key LIKE '%' || CASE WHEN role <> '' THEN '/' || role ELSE '' END || ':' || granted_before_usd::text)
)
SELECT 'keys' AS name, 'idempotency keys unique and well-formed' AS title,
       (SELECT count(*) FROM credit_grants) AS checked,
       count(*) AS failed,
       coalesce((array_agg(example ORDER BY example))[1:5], '{}') AS examples
  FROM bad;
