-- Run $1's referral aggregates: base run $2's plus the delta's, aggregated under scratch run $3
-- with the same terms. $4/$5 the run's shard count/index: a shard extending an unsharded base
-- keeps the referrals of its referrers and referred users (as aggregate_referrals does). A run has
-- one row per referred user, and a referral binds to the same versions in both: the rows are
-- joined on the user and their sums added. (A GROUP BY over both runs' rows cost 0.45 s of
-- numeric sums at 58k referrals; a full join can only be hashed or merged, whatever the planner
-- guesses of the delta's rows, which are not analyzed yet.)
INSERT INTO run_referrals (run_id, referred_user_id, referrer_id, usage_rows, spend_usd, serverless_rows, serverless_usd,
                           terms_id, earned_usd, serverless_terms_id, tier_terms_id, tier_rows, tier_spend_usd, tier_earned_usd)
SELECT $1, referred_user_id, coalesce(b.referrer_id, d.referrer_id),
       coalesce(b.usage_rows, 0) + coalesce(d.usage_rows, 0), coalesce(b.spend_usd, 0) + coalesce(d.spend_usd, 0),
       coalesce(b.serverless_rows, 0) + coalesce(d.serverless_rows, 0), coalesce(b.serverless_usd, 0) + coalesce(d.serverless_usd, 0),
       coalesce(b.terms_id, d.terms_id), coalesce(b.earned_usd, 0) + coalesce(d.earned_usd, 0),
       coalesce(b.serverless_terms_id, d.serverless_terms_id), coalesce(b.tier_terms_id, d.tier_terms_id),
       coalesce(b.tier_rows, 0) + coalesce(d.tier_rows, 0), coalesce(b.tier_spend_usd, 0) + coalesce(d.tier_spend_usd, 0),
       coalesce(b.tier_earned_usd, 0) + coalesce(d.tier_earned_usd, 0)
  FROM (SELECT * FROM run_referrals WHERE run_id = $2) b
  FULL JOIN (SELECT * FROM run_referrals WHERE run_id = $3) d USING (referred_user_id)
 WHERE $4::integer = 1 OR creditrecon_shard(coalesce(b.referrer_id, d.referrer_id), $4) = $5 OR creditrecon_shard(referred_user_id, $4) = $5;
