-- Per referral as of cutoff $2 (SPEC 2.1, 2.2): the referred user's usage from referred_at on,
-- all products from the Referral Program's start $3, serverless from its start $4. One pass
-- serves both referral programs. Self-referrals count for nothing. $1 run; {{usage}} as in
-- anomalies_prepare.
INSERT INTO run_referrals (run_id, referred_user_id, referrer_id, usage_rows, spend_usd, serverless_rows, serverless_usd)
SELECT $1, r.referred_user_id, r.referrer_id,
       count(*) FILTER (WHERE e.occurred_at >= $3),
       coalesce(sum(e.amount_usd) FILTER (WHERE e.occurred_at >= $3), 0),
       count(*) FILTER (WHERE e.product = 'serverless' AND e.occurred_at >= $4),
       coalesce(sum(e.amount_usd) FILTER (WHERE e.product = 'serverless' AND e.occurred_at >= $4), 0)
  FROM referrals r
  JOIN {{usage}} e ON e.user_id = r.referred_user_id
 WHERE r.referred_at < $2 AND r.referrer_id <> r.referred_user_id
   AND e.occurred_at >= r.referred_at AND e.occurred_at < $2
   AND NOT EXISTS (SELECT FROM run_anomalies a WHERE a.run_id = $1 AND a.usage_event_id = e.id)
 GROUP BY r.referred_user_id, r.referrer_id;
