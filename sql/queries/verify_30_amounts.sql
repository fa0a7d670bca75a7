-- verify (b): grants are positive whole cents, and start from a non-negative whole-cent total.
WITH bad AS (
  SELECT id, 'grant ' || id || ' of ' || amount_usd::text || ' (granted before ' || granted_before_usd::text || ')' AS example
    FROM credit_grants
   WHERE amount_usd <= 0 OR amount_usd <> trunc(amount_usd, 2) OR amount_usd = 'NaN'
      OR granted_before_usd < 0 OR granted_before_usd <> trunc(granted_before_usd, 2)
)
SELECT 'amounts' AS name, 'grants positive, whole cents' AS title,
       (SELECT count(*) FROM credit_grants) AS checked,
       count(*) AS failed,
       coalesce((array_agg(example ORDER BY id))[1:5], '{}') AS examples
  FROM bad;
