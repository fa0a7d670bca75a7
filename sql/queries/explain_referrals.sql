-- The referrals of user $3 (as referrer or referred user) made before cutoff $2, with the terms
-- versions they bind to in run $1's terms (run_terms), whether each version counts them as a new
-- account, and where each window ends (NULL: lifetime). For `creditrecon explain`.
SELECT r.referred_user_id, r.referrer_id, r.referred_at, r.referrer_id = r.referred_user_id AS self_referral,
       coalesce(rt.terms_id, '') AS terms_id, coalesce(rt.enabled, false) AS enabled,
       creditrecon_new_account(u.created_at, r.referred_at, rt.max_account_age) AS new_account,
       nullif(creditrecon_window_end(r.referred_at, rt.window_months, rt.window_days), 'infinity') AS window_end,
       coalesce(st.terms_id, '') AS serverless_terms_id, coalesce(st.enabled, false) AS serverless_enabled,
       creditrecon_new_account(u.created_at, r.referred_at, st.max_account_age) AS serverless_new_account,
       nullif(creditrecon_window_end(r.referred_at, st.window_months, st.window_days), 'infinity') AS serverless_window_end
  FROM referrals r
  JOIN users u ON u.id = r.referred_user_id
  LEFT JOIN run_terms rt ON rt.run_id = $1 AND rt.program = 'referral'
                        AND r.referred_at >= rt.valid_from AND r.referred_at < rt.valid_to
  LEFT JOIN run_terms st ON st.run_id = $1 AND st.program = 'serverless_referral'
                        AND r.referred_at >= st.valid_from AND r.referred_at < st.valid_to
 WHERE r.referred_at < $2 AND (r.referrer_id = $3 OR r.referred_user_id = $3)
 ORDER BY r.referred_at, r.referred_user_id COLLATE "C"
 LIMIT $4;
