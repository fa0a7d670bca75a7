-- Per referral as of usage cutoff $2 (SPEC 2.1, 2.2, 7.2, 8.2): the referred user's usage from
-- referred_at on, summed per product class and period bucket (see ratePlan.expand: the SELECT's
-- class and bucket) inside each program's window of the referral (run $3's run_bindings), then
-- priced by run $3's rates (run_rates): for the Referral Program version the referral binds to,
-- the rows and spend that earn and the exact earnings; for its Serverless Referral Program
-- version, the rows and spend of the products it counts from its usage_from on; for its
-- referrer's partner tier, from the enrollment and inside the tier's window, the usage that earns
-- under the tier instead (tier_*: folded away when the terms have no tier, see ratePlan.expand).
-- $1 run; the usage read as in anomalies_prepare. The bindings hold only the referrals of the run's
-- shard. The columns are run_referrals'.
WITH buckets AS (
  SELECT b.referred_user_id, {{class}} AS class, {{bucket}} AS bucket,
         count(*) FILTER (WHERE e.occurred_at < b.ends AND NOT ({{tiers}} AND coalesce(e.occurred_at >= b.tier_from AND e.occurred_at < b.tier_ends, false))) AS rows,
         sum(e.amount_usd) FILTER (WHERE e.occurred_at < b.ends AND NOT ({{tiers}} AND coalesce(e.occurred_at >= b.tier_from AND e.occurred_at < b.tier_ends, false))) AS usd,
         count(*) FILTER (WHERE {{tiers}} AND e.occurred_at >= b.tier_from AND e.occurred_at < b.tier_ends) AS tier_rows,
         sum(e.amount_usd) FILTER (WHERE {{tiers}} AND e.occurred_at >= b.tier_from AND e.occurred_at < b.tier_ends) AS tier_usd,
         count(*) FILTER (WHERE e.occurred_at >= b.serverless_from AND e.occurred_at < b.serverless_ends AND e.product = ANY(b.serverless_products)) AS serverless_rows,
         sum(e.amount_usd) FILTER (WHERE e.occurred_at >= b.serverless_from AND e.occurred_at < b.serverless_ends AND e.product = ANY(b.serverless_products)) AS serverless_usd
    FROM run_bindings b
    JOIN {{usage}} e ON e.user_id = b.referred_user_id
   WHERE b.run_id = $3 AND e.occurred_at >= b.referred_at AND e.occurred_at < $2
     AND (e.occurred_at < b.ends OR e.occurred_at < b.serverless_ends OR ({{tiers}} AND e.occurred_at >= b.tier_from AND e.occurred_at < b.tier_ends))
     AND NOT EXISTS (SELECT FROM run_anomalies a WHERE a.run_id = $1 AND a.usage_event_id = e.id)
   GROUP BY 1, 2, 3
)
SELECT $1::bigint AS run_id, g.referred_user_id, b.referrer_id,
       coalesce(sum(g.rows) FILTER (WHERE rr.rate IS NOT NULL), 0) AS usage_rows,
       coalesce(sum(g.usd) FILTER (WHERE rr.rate IS NOT NULL), 0) AS spend_usd,
       coalesce(sum(g.serverless_rows), 0) AS serverless_rows,
       coalesce(sum(g.serverless_usd), 0) AS serverless_usd,
       b.terms_id,
       coalesce(sum(g.usd * rr.rate), 0) AS earned_usd,
       b.serverless_terms_id,
       b.tier_terms_id,
       coalesce(sum(g.tier_rows) FILTER (WHERE tr.rate IS NOT NULL), 0) AS tier_rows,
       coalesce(sum(g.tier_usd) FILTER (WHERE tr.rate IS NOT NULL), 0) AS tier_spend_usd,
       coalesce(sum(g.tier_usd * tr.rate), 0) AS tier_earned_usd
  FROM buckets g
  JOIN run_bindings b ON b.run_id = $3 AND b.referred_user_id = g.referred_user_id
  LEFT JOIN run_rates rr ON rr.run_id = $3 AND rr.program = 'referral' AND rr.terms_id = b.terms_id
                        AND rr.class = g.class AND rr.bucket = g.bucket
  LEFT JOIN run_rates tr ON tr.run_id = $3 AND tr.program = 'referral' AND tr.terms_id = b.tier_terms_id
                        AND tr.class = g.class AND tr.bucket = g.bucket
 GROUP BY g.referred_user_id, b.referrer_id, b.terms_id, b.serverless_terms_id, b.tier_terms_id;
