-- Run $1's bindings (run_bindings): each referral before usage cutoff $2, self-referrals left out,
-- with the versions of run $1's terms it binds to by referred_at and where each program's window
-- of it ends: NULL when its version excludes it as not a new account (or it binds to none). From
-- its referrer's enrollment into a partner tier (SPEC 8.2), tier_from and tier_ends bound the
-- usage that earns under the tier instead; a referral its own version excludes is excluded from
-- the tier too. Its serverless version's products count toward the bonus from serverless_from
-- on. The referrals read (a placeholder) are the table, or the part of it a pass over usage
-- needs. $3/$4 the shard count/index: a shard keeps the referrals of its referrers and of its
-- referred users. The columns are run_bindings'.
SELECT $1::bigint AS run_id, r.referred_user_id, r.referrer_id, r.referred_at,
       rt.terms_id, st.terms_id AS serverless_terms_id, tt.terms_id AS tier_terms_id,
       CASE WHEN creditrecon_new_account(u.created_at, r.referred_at, rt.max_account_age)
            THEN creditrecon_window_end(r.referred_at, rt.window_months, rt.window_days) END AS ends,
       CASE WHEN creditrecon_new_account(u.created_at, r.referred_at, st.max_account_age)
            THEN creditrecon_window_end(r.referred_at, st.window_months, st.window_days) END AS serverless_ends,
       CASE WHEN rt.terms_id IS NOT NULL AND creditrecon_new_account(u.created_at, r.referred_at, rt.max_account_age)
            THEN pe.enrolled_from END AS tier_from,
       creditrecon_window_end(r.referred_at, tt.window_months, tt.window_days) AS tier_ends,
       st.products AS serverless_products, greatest(r.referred_at, st.usage_from) AS serverless_from
  FROM {{referrals}} r
  LEFT JOIN run_terms rt ON rt.run_id = $1 AND rt.program = 'referral'
                        AND r.referred_at >= rt.valid_from AND r.referred_at < rt.valid_to
  LEFT JOIN run_terms st ON st.run_id = $1 AND st.program = 'serverless_referral'
                        AND r.referred_at >= st.valid_from AND r.referred_at < st.valid_to
  -- The referred user's creation, looked up only under versions with an account-age limit (the
  -- OFFSET keeps the lookup a per-referral probe that the limit gates; without a limit NULL
  -- does, since creditrecon_new_account tests the limit first).
  LEFT JOIN LATERAL (SELECT u.created_at FROM users u
                      WHERE u.id = r.referred_user_id AND (rt.max_account_age IS NOT NULL OR st.max_account_age IS NOT NULL)
                     OFFSET 0) u ON true
  LEFT JOIN partner_enrollments pe ON pe.referrer_id = r.referrer_id
  LEFT JOIN run_terms tt ON tt.run_id = $1 AND tt.program = 'referral' AND tt.terms_id = pe.tier
 WHERE r.referred_at < $2 AND r.referrer_id <> r.referred_user_id
   AND ($3::integer = 1 OR creditrecon_shard(r.referrer_id, $3) = $4 OR creditrecon_shard(r.referred_user_id, $3) = $4);
