-- verify (terms): every grant names a terms version recorded in terms_versions (SPEC 7.3): the
-- version its account was paid under, as a committed run used it.
WITH bad AS (
  SELECT min(g.id) AS id, count(*) || ' grants of ' || g.program || ' name version ' || g.terms_id ||
         ', which terms_versions does not record' AS example
    FROM credit_grants g
   WHERE NOT EXISTS (SELECT FROM terms_versions v WHERE v.program = g.program AND v.id = g.terms_id)
   GROUP BY g.program, g.terms_id
)
SELECT 'terms_recorded' AS name, 'every grant names a recorded terms version' AS title,
       (SELECT count(*) FROM credit_grants) AS checked,
       coalesce(sum(1), 0) AS failed,
       coalesce((array_agg(example ORDER BY id))[1:5], '{}') AS examples
  FROM bad;
