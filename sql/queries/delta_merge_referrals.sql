-- Run $1's referral aggregates: base run $2's plus the delta's, aggregated under scratch run $3
-- with the same terms. $4/$5 the run's shard count/index: a shard extending an unsharded base
-- keeps the referrals of its referrers and referred users (as aggregate_referrals does).
INSERT INTO run_referrals (run_id, referred_user_id, referrer_id, usage_rows, spend_usd, serverless_rows, serverless_usd,
                           terms_id, earned_usd, serverless_terms_id, tier_terms_id, tier_rows, tier_spend_usd, tier_earned_usd)
SELECT $1, referred_user_id, referrer_id, sum(usage_rows), sum(spend_usd), sum(serverless_rows), sum(serverless_usd),
       terms_id, sum(earned_usd), serverless_terms_id, tier_terms_id, sum(tier_rows), sum(tier_spend_usd), sum(tier_earned_usd)
  FROM run_referrals
 WHERE run_id IN ($2, $3)
   AND ($4::integer = 1 OR creditrecon_shard(referrer_id, $4) = $5 OR creditrecon_shard(referred_user_id, $4) = $5)
 GROUP BY referred_user_id, referrer_id, terms_id, serverless_terms_id, tier_terms_id;
