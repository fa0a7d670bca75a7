-- Per referral as of cutoff $2 (SPEC 2.1, 2.2): the referred user's usage from referred_at on,
-- all products from the Referral Program's start $3, serverless from its start $4. One pass
-- serves both referral programs. Self-referrals count for nothing. $1 run; {{usage}} as in
-- anomalies_prepare; $5/$6 the shard count/index: a shard keeps the referrals of its referrers
-- (Referral Program accounts) and of its referred users (Serverless Referral Program accounts).
-- The columns are run_referrals'.
SELECT $1::bigint AS run_id, r.referred_user_id, r.referrer_id,
       count(*) FILTER (WHERE e.occurred_at >= $3) AS usage_rows,
       coalesce(sum(e.amount_usd) FILTER (WHERE e.occurred_at >= $3), 0) AS spend_usd,
       count(*) FILTER (WHERE e.product = 'serverless' AND e.occurred_at >= $4) AS serverless_rows,
       coalesce(sum(e.amount_usd) FILTER (WHERE e.product = 'serverless' AND e.occurred_at >= $4), 0) AS serverless_usd
  FROM referrals r
  JOIN {{usage}} e ON e.user_id = r.referred_user_id
 WHERE r.referred_at < $2 AND r.referrer_id <> r.referred_user_id
   AND e.occurred_at >= r.referred_at AND e.occurred_at < $2
   AND ($5::integer = 1 OR creditrecon_shard(r.referrer_id, $5) = $6 OR creditrecon_shard(r.referred_user_id, $5) = $6)
   AND NOT EXISTS (SELECT FROM run_anomalies a WHERE a.run_id = $1 AND a.usage_event_id = e.id)
 GROUP BY r.referred_user_id, r.referrer_id;
