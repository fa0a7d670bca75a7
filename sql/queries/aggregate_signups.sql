-- Per referral as of cutoff $2 bound to a signup bonus version of run $1's terms (SPEC 8.1), by
-- referred_at, and counted as a new account under its max_account_age: the referred user's loads
-- with referred_at <= loaded_at < cutoff (loads are not held), and both recipients' countries.
-- Every run reads the loads whole, so a load that arrives late counts exactly once. A load whose
-- amount is NaN counts for nothing. $3/$4 the shard count/index: a shard keeps the referrals of
-- its referred users. The columns are run_signups'.
SELECT $1::bigint AS run_id, r.referred_user_id, r.referrer_id, st.terms_id,
       coalesce(sum(l.amount_usd) FILTER (WHERE l.amount_usd <> 'NaN'), 0) AS loads_usd,
       rf.country AS referrer_country, u.country AS referred_country
  FROM referrals r
  JOIN users u ON u.id = r.referred_user_id
  JOIN users rf ON rf.id = r.referrer_id
  JOIN run_terms st ON st.run_id = $1 AND st.program = 'signup_bonus'
                   AND r.referred_at >= st.valid_from AND r.referred_at < st.valid_to
  LEFT JOIN credit_loads l ON l.user_id = r.referred_user_id AND l.loaded_at >= r.referred_at AND l.loaded_at < $2
 WHERE r.referred_at < $2 AND r.referrer_id <> r.referred_user_id
   AND creditrecon_new_account(u.created_at, r.referred_at, st.max_account_age)
   AND ($3::integer = 1 OR creditrecon_shard(r.referred_user_id, $3) = $4)
 GROUP BY r.referred_user_id, r.referrer_id, st.terms_id, rf.country, u.country;
