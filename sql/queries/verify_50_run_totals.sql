-- verify (c): each run's ledger row counts and sums its grants (grants_written, amount_granted);
-- a run that never committed has none.
WITH per_run AS (
  SELECT r.id, r.grants_committed_at IS NOT NULL AS committed,
         coalesce(r.grants_written, 0) AS written, coalesce(r.amount_granted, 0) AS amount,
         count(g.id) AS found, coalesce(sum(g.amount_usd), 0) AS found_amount
    FROM recon_runs r
    LEFT JOIN credit_grants g ON g.run_id = r.id
   GROUP BY r.id
), bad AS (
  SELECT id, 'run ' || id || CASE
           WHEN NOT committed THEN ' never committed but has ' || found || ' grants'
           ELSE ' says ' || written || ' grants of ' || amount::text || ', has ' || found || ' of ' || found_amount::text
         END AS example
    FROM per_run
   WHERE CASE WHEN committed THEN written <> found OR amount <> found_amount ELSE found <> 0 END
)
SELECT 'run_totals' AS name, 'run ledger counts and sums its grants' AS title,
       (SELECT count(*) FROM recon_runs) AS checked,
       count(*) AS failed,
       coalesce((array_agg(example ORDER BY id))[1:5], '{}') AS examples
  FROM bad;
