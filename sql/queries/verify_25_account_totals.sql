-- verify (a'): every account's total in credit_accounts, which runs read instead of summing the
-- ledger, equals the sum of its grants in credit_grants; no total without grants, no grants
-- without a total.
WITH ledger AS (
  SELECT program, terms_id, account_id, role, max(beneficiary_id) AS beneficiary_id, count(*) AS grants, sum(amount_usd) AS granted_usd
    FROM credit_grants
   GROUP BY program, terms_id, account_id, role
), bad AS (
  SELECT coalesce(l.program, a.program) ||
         CASE WHEN coalesce(l.terms_id, a.terms_id) <> 'seed' THEN '@' || coalesce(l.terms_id, a.terms_id) ELSE '' END || ':' || coalesce(l.account_id, a.account_id) ||
         CASE WHEN coalesce(l.role, a.role) <> '' THEN '/' || coalesce(l.role, a.role) ELSE '' END ||
         ': ledger ' || coalesce(l.grants, 0) || ' grants, ' || coalesce(l.granted_usd, 0)::text || ' USD to ' || coalesce(l.beneficiary_id, '-') ||
         '; credit_accounts ' || coalesce(a.grants, 0) || ' grants, ' || coalesce(a.granted_usd, 0)::text || ' USD to ' || coalesce(a.beneficiary_id, '-') AS example
    FROM ledger l
    FULL JOIN credit_accounts a USING (program, terms_id, account_id, role)
   WHERE l.grants IS DISTINCT FROM a.grants OR l.granted_usd IS DISTINCT FROM a.granted_usd
      OR l.beneficiary_id IS DISTINCT FROM a.beneficiary_id
)
SELECT 'account_totals' AS name, 'account totals (credit_accounts) equal their grants' AS title,
       (SELECT count(*) FROM ledger) AS checked,
       count(*) AS failed,
       coalesce((array_agg(example ORDER BY example))[1:5], '{}') AS examples
  FROM bad;
