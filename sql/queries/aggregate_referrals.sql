-- Per referral as of usage cutoff $2 (SPEC 2.1, 2.2, 7.2): the referred user's usage from
-- referred_at on, summed per product class and period bucket (see ratePlan: $4 products, $5
-- their classes, $6 the bucket bounds), then priced by run $3's rates (run_rates): for the
-- Referral Program version the referral binds to, the rows and spend that earn and the exact
-- earnings; for its Serverless Referral Program version, the rows and spend that count toward
-- the bonus. Each program counts usage inside its version's window, and none of a referral that
-- its version excludes as not a new account. From a referrer's enrollment into a partner tier
-- (SPEC 8.2), the usage inside the tier's window of the referral earns under the tier instead
-- (tier_*), unless the referral's own version excludes it. Self-referrals count for nothing. $1 run; {{usage}}
-- as in anomalies_prepare; $7/$8 the shard count/index: a shard keeps the referrals of its
-- referrers (Referral Program accounts) and of its referred users (Serverless Referral Program
-- accounts). The columns are run_referrals'.
WITH bound AS (
  SELECT r.referred_user_id, r.referrer_id, r.referred_at, rt.terms_id, st.terms_id AS serverless_terms_id,
         CASE WHEN creditrecon_new_account(u.created_at, r.referred_at, rt.max_account_age)
              THEN creditrecon_window_end(r.referred_at, rt.window_months, rt.window_days) END AS ends,
         CASE WHEN creditrecon_new_account(u.created_at, r.referred_at, st.max_account_age)
              THEN creditrecon_window_end(r.referred_at, st.window_months, st.window_days) END AS serverless_ends,
         tt.terms_id AS tier_terms_id,
         CASE WHEN rt.terms_id IS NOT NULL AND creditrecon_new_account(u.created_at, r.referred_at, rt.max_account_age)
              THEN pe.enrolled_from END AS tier_from,
         creditrecon_window_end(r.referred_at, tt.window_months, tt.window_days) AS tier_ends
    FROM referrals r
    JOIN users u ON u.id = r.referred_user_id
    LEFT JOIN run_terms rt ON rt.run_id = $3 AND rt.program = 'referral'
                          AND r.referred_at >= rt.valid_from AND r.referred_at < rt.valid_to
    LEFT JOIN run_terms st ON st.run_id = $3 AND st.program = 'serverless_referral'
                          AND r.referred_at >= st.valid_from AND r.referred_at < st.valid_to
    LEFT JOIN partner_enrollments pe ON pe.referrer_id = r.referrer_id
    LEFT JOIN run_terms tt ON tt.run_id = $3 AND tt.program = 'referral' AND tt.terms_id = pe.tier
   WHERE r.referred_at < $2 AND r.referrer_id <> r.referred_user_id
     AND ($7::integer = 1 OR creditrecon_shard(r.referrer_id, $7) = $8 OR creditrecon_shard(r.referred_user_id, $7) = $8)
  -- OFFSET 0 keeps this a subquery of its own: its window ends are computed once per referral,
  -- not again for every usage row that joins it (and, unlike a materialized CTE, it still runs
  -- in parallel workers).
  OFFSET 0
), buckets AS (
  SELECT b.referred_user_id, b.referrer_id, b.terms_id, b.serverless_terms_id, b.tier_terms_id,
         coalesce(($5::integer[])[array_position($4::text[], e.product)], 0) AS class,
         width_bucket(e.occurred_at, $6::timestamptz[]) AS bucket,
         count(*) FILTER (WHERE e.occurred_at < b.ends AND NOT coalesce(e.occurred_at >= b.tier_from AND e.occurred_at < b.tier_ends, false)) AS rows,
         sum(e.amount_usd) FILTER (WHERE e.occurred_at < b.ends AND NOT coalesce(e.occurred_at >= b.tier_from AND e.occurred_at < b.tier_ends, false)) AS usd,
         count(*) FILTER (WHERE e.occurred_at >= b.tier_from AND e.occurred_at < b.tier_ends) AS tier_rows,
         sum(e.amount_usd) FILTER (WHERE e.occurred_at >= b.tier_from AND e.occurred_at < b.tier_ends) AS tier_usd,
         count(*) FILTER (WHERE e.occurred_at < b.serverless_ends) AS serverless_rows,
         sum(e.amount_usd) FILTER (WHERE e.occurred_at < b.serverless_ends) AS serverless_usd
    FROM bound b
    JOIN {{usage}} e ON e.user_id = b.referred_user_id
   WHERE e.occurred_at >= b.referred_at AND e.occurred_at < $2
     AND (e.occurred_at < b.ends OR e.occurred_at < b.serverless_ends OR (e.occurred_at >= b.tier_from AND e.occurred_at < b.tier_ends))
     AND NOT EXISTS (SELECT FROM run_anomalies a WHERE a.run_id = $1 AND a.usage_event_id = e.id)
   GROUP BY 1, 2, 3, 4, 5, 6, 7
)
SELECT $1::bigint AS run_id, g.referred_user_id, g.referrer_id,
       coalesce(sum(g.rows) FILTER (WHERE rr.rate IS NOT NULL), 0) AS usage_rows,
       coalesce(sum(g.usd) FILTER (WHERE rr.rate IS NOT NULL), 0) AS spend_usd,
       coalesce(sum(g.serverless_rows) FILTER (WHERE sr.rate IS NOT NULL), 0) AS serverless_rows,
       coalesce(sum(g.serverless_usd) FILTER (WHERE sr.rate IS NOT NULL), 0) AS serverless_usd,
       g.terms_id,
       coalesce(sum(g.usd * rr.rate), 0) AS earned_usd,
       g.serverless_terms_id,
       g.tier_terms_id,
       coalesce(sum(g.tier_rows) FILTER (WHERE tr.rate IS NOT NULL), 0) AS tier_rows,
       coalesce(sum(g.tier_usd) FILTER (WHERE tr.rate IS NOT NULL), 0) AS tier_spend_usd,
       coalesce(sum(g.tier_usd * tr.rate), 0) AS tier_earned_usd
  FROM buckets g
  LEFT JOIN run_rates rr ON rr.run_id = $3 AND rr.program = 'referral' AND rr.terms_id = g.terms_id
                        AND rr.class = g.class AND rr.bucket = g.bucket
  LEFT JOIN run_rates sr ON sr.run_id = $3 AND sr.program = 'serverless_referral' AND sr.terms_id = g.serverless_terms_id
                        AND sr.class = g.class AND sr.bucket = g.bucket
  LEFT JOIN run_rates tr ON tr.run_id = $3 AND tr.program = 'referral' AND tr.terms_id = g.tier_terms_id
                        AND tr.class = g.class AND tr.bucket = g.bucket
 GROUP BY g.referred_user_id, g.referrer_id, g.terms_id, g.serverless_terms_id, g.tier_terms_id;
