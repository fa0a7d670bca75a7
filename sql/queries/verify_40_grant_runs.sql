-- verify (c): every grant belongs to a run that exists, committed its grants, and has its cutoff.
WITH bad AS (
  SELECT g.id,
         'grant ' || g.id || CASE
           WHEN r.id IS NULL THEN ' names run ' || g.run_id || ', which does not exist'
           WHEN r.grants_committed_at IS NULL THEN ' belongs to run ' || r.id || ', which never committed its grants'
           ELSE ' is as of ' || g.as_of::text || ' but its run ' || r.id || ' is as of ' || r.as_of::text
         END AS example
    FROM credit_grants g
    LEFT JOIN recon_runs r ON r.id = g.run_id
   WHERE r.id IS NULL OR r.grants_committed_at IS NULL OR r.as_of <> g.as_of
)
SELECT 'grant_runs' AS name, 'every grant belongs to a committed run' AS title,
       (SELECT count(*) FROM credit_grants) AS checked,
       count(*) AS failed,
       coalesce((array_agg(example ORDER BY id))[1:5], '{}') AS examples
  FROM bad;
