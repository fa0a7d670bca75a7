-- Referral Program accounts of run $1 as of its cutoff $2 (SPEC 2.2): referrals before the
-- cutoff, their spend, acceptance, and grants. $3 only this referrer (NULL: all).
WITH counts AS (
  SELECT referrer_id, count(*) AS referrals
    FROM referrals
   WHERE referred_at < $2 AND referrer_id <> referred_user_id
     AND ($3::text IS NULL OR referrer_id = $3)
   GROUP BY referrer_id
), spend AS (
  SELECT referrer_id, sum(usage_rows) AS usage_rows, sum(spend_usd) AS spend
    FROM run_referrals
   WHERE run_id = $1 AND ($3::text IS NULL OR referrer_id = $3)
   GROUP BY referrer_id
), granted AS (
  SELECT account_id AS referrer_id, sum(amount_usd) AS granted,
         coalesce(sum(amount_usd) FILTER (WHERE as_of <= $2), 0) AS granted_as_of
    FROM credit_grants
   WHERE program = 'referral' AND ($3::text IS NULL OR account_id = $3)
   GROUP BY account_id
)
SELECT referrer_id,
       coalesce(c.referrals, 0) AS referrals,
       coalesce(s.usage_rows, 0) AS usage_rows,
       coalesce(s.spend, 0) AS spend,
       a.referrer_id IS NOT NULL AS accepted,
       coalesce(g.granted, 0) AS granted,
       coalesce(g.granted_as_of, 0) AS granted_as_of
  FROM counts c
  FULL JOIN granted g USING (referrer_id)
  LEFT JOIN spend s USING (referrer_id)
  LEFT JOIN referral_acceptances a USING (referrer_id)
 ORDER BY referrer_id COLLATE "C";
