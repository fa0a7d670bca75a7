-- Serverless Referral Program aggregates per referral as of cutoff $1 (SPEC 2.1): the referred
-- user's serverless spend from referred_at on, and the bonuses already granted per role.
-- $2 program start, $3 only referrals where this user is referrer or referred (NULL: all).
WITH refs AS (
  SELECT referred_user_id, referrer_id, referred_at
    FROM referrals
   WHERE referred_at < $1 AND referrer_id <> referred_user_id
     AND ($3::text IS NULL OR referrer_id = $3 OR referred_user_id = $3)
), spend AS (
  SELECT r.referred_user_id, count(*) AS usage_rows, sum(e.amount_usd) AS spend
    FROM refs r
    JOIN usage_events e ON e.user_id = r.referred_user_id
   WHERE e.product = 'serverless'
     AND e.occurred_at >= r.referred_at AND e.occurred_at < $1 AND e.occurred_at >= $2
     AND NOT EXISTS (SELECT 1 FROM run_anomalies a WHERE a.id = e.id)
   GROUP BY r.referred_user_id
), granted AS (
  SELECT account_id AS referred_user_id,
         coalesce(sum(amount_usd) FILTER (WHERE role = 'referrer'), 0) AS granted_referrer,
         coalesce(sum(amount_usd) FILTER (WHERE role = 'referred'), 0) AS granted_referred,
         coalesce(sum(amount_usd) FILTER (WHERE role = 'referrer' AND as_of <= $1), 0) AS granted_referrer_as_of,
         coalesce(sum(amount_usd) FILTER (WHERE role = 'referred' AND as_of <= $1), 0) AS granted_referred_as_of
    FROM credit_grants
   WHERE program = 'serverless_referral'
     AND ($3::text IS NULL OR account_id = $3 OR beneficiary_id = $3)
   GROUP BY account_id
)
SELECT referred_user_id,
       r.referrer_id,
       coalesce(s.usage_rows, 0) AS usage_rows,
       coalesce(s.spend, 0) AS spend,
       coalesce(g.granted_referrer, 0) AS granted_referrer,
       coalesce(g.granted_referred, 0) AS granted_referred,
       coalesce(g.granted_referrer_as_of, 0) AS granted_referrer_as_of,
       coalesce(g.granted_referred_as_of, 0) AS granted_referred_as_of
  FROM spend s
  FULL JOIN granted g USING (referred_user_id)
  JOIN referrals r USING (referred_user_id)
 ORDER BY referred_user_id COLLATE "C";
