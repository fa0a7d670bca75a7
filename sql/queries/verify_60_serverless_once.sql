-- verify (d): a serverless bonus is granted at most once per referral and role, to a named role.
WITH bad AS (
  SELECT min(id) AS id, 'grants ' || string_agg(id::text, ',' ORDER BY id) || ' pay the ' ||
         CASE WHEN role = '' THEN '(no role)' ELSE role END || ' bonus of referral ' || account_id ||
         CASE WHEN role = '' THEN '' ELSE ' ' || count(*) || ' times' END AS example
    FROM credit_grants
   WHERE program = 'serverless_referral'
   GROUP BY account_id, role
  HAVING count(*) > 1 OR role = ''
)
SELECT 'serverless_once' AS name, 'serverless bonuses at most once per referral and role' AS title,
       (SELECT count(*) FROM credit_grants WHERE program = 'serverless_referral') AS checked,
       count(*) AS failed,
       coalesce((array_agg(example ORDER BY id))[1:5], '{}') AS examples
  FROM bad;
