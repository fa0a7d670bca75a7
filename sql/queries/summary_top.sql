-- The summary page's top beneficiaries: the $2 granted the most as of cutoff $1 (grants with
-- as_of <= $1), all programs together, with what the cutoff itself granted them; ties by id.
SELECT beneficiary_id,
       array_agg(DISTINCT program ORDER BY program) AS programs,
       count(*) AS grants,
       sum(amount_usd) AS granted_to_date,
       coalesce(sum(amount_usd) FILTER (WHERE as_of = $1), 0) AS granted_as_of
  FROM credit_grants
 WHERE as_of <= $1
 GROUP BY beneficiary_id
 ORDER BY granted_to_date DESC, beneficiary_id COLLATE "C"
 LIMIT $2;
