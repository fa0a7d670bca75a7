-- Referral Program aggregates per referrer as of cutoff $1 (SPEC 2.2): referrals before the
-- cutoff, and the spend of their referred users from referred_at on. Self-referrals count for
-- nothing. $2 program start, $3 only this referrer (NULL: all).
WITH refs AS (
  SELECT referred_user_id, referrer_id, referred_at
    FROM referrals
   WHERE referred_at < $1 AND referrer_id <> referred_user_id
     AND ($3::text IS NULL OR referrer_id = $3)
), spend AS (
  SELECT r.referrer_id, count(*) AS usage_rows, sum(e.amount_usd) AS spend
    FROM refs r
    JOIN usage_events e ON e.user_id = r.referred_user_id
   WHERE e.occurred_at >= r.referred_at AND e.occurred_at < $1 AND e.occurred_at >= $2
     AND NOT EXISTS (SELECT 1 FROM run_anomalies a WHERE a.id = e.id)
   GROUP BY r.referrer_id
), counts AS (
  SELECT referrer_id, count(*) AS referrals FROM refs GROUP BY referrer_id
), granted AS (
  SELECT account_id AS referrer_id, sum(amount_usd) AS granted,
         coalesce(sum(amount_usd) FILTER (WHERE as_of <= $1), 0) AS granted_as_of
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
