-- verify (terms): every recorded terms version still hashes to its content: nobody edited what
-- the runs recorded of the terms they paid under.
WITH bad AS (
  SELECT program || '/' || id || ' recorded by run ' || first_run_id || ': sha256 ' || sha256 ||
         ', its content hashes to ' || encode(sha256(convert_to(content, 'UTF8')), 'hex') AS example
    FROM terms_versions
   WHERE encode(sha256(convert_to(content, 'UTF8')), 'hex') <> sha256
)
SELECT 'terms_hashes' AS name, 'recorded terms versions hash to their content' AS title,
       (SELECT count(*) FROM terms_versions) AS checked,
       count(*) AS failed,
       coalesce((array_agg(example ORDER BY example))[1:5], '{}') AS examples
  FROM bad;
