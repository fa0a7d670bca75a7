-- Every account that has grants, with its total and the cutoff and run of its latest grant (by
-- id): that run's target is what the account's total must not exceed. The run's parameters come
-- on the first row of each run only; rows are ordered by cutoff and run.
-- $1 only accounts whose latest grant is as of this cutoff (NULL: all).
WITH latest AS (
  SELECT DISTINCT ON (program, terms_id, account_id, role)
         program, terms_id, account_id, role, beneficiary_id, as_of, run_id,
         sum(amount_usd) OVER (PARTITION BY program, terms_id, account_id, role) AS granted
    FROM credit_grants
   ORDER BY program, terms_id, account_id, role, id DESC
)
SELECT l.program, l.terms_id, l.account_id, l.role, l.beneficiary_id, l.granted, l.as_of, l.run_id,
       CASE WHEN row_number() OVER (PARTITION BY l.run_id ORDER BY l.program, l.terms_id, l.account_id, l.role) = 1
            THEN r.parameters END AS parameters,
       CASE WHEN row_number() OVER (PARTITION BY l.run_id ORDER BY l.program, l.terms_id, l.account_id, l.role) = 1
            THEN r.terms END AS terms
  FROM latest l
  JOIN recon_runs r ON r.id = l.run_id
 WHERE $1::timestamptz IS NULL OR l.as_of = $1
 ORDER BY l.as_of, l.run_id, l.program, l.terms_id, l.account_id, l.role;
