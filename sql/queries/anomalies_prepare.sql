-- Usage rows that cannot be attributed or are invalid (SPEC 3.4), with the first reason that
-- applies. Every aggregate query of the run excludes them, so they earn nothing anywhere.
-- $1 cutoff, $2 latest believable occurred_at (run start + clock skew), $3 largest |amount_usd|.
CREATE TEMP TABLE run_anomalies ON COMMIT DROP AS
SELECT e.id, e.user_id, e.product, e.template_id, e.amount_usd::text AS amount_usd, e.occurred_at,
       CASE
         WHEN e.amount_usd = 'NaN' THEN 'amount_nan'
         WHEN abs(e.amount_usd) > $3 THEN 'amount_out_of_range'
         WHEN e.occurred_at > $2 THEN 'occurred_in_future'
         WHEN u.id IS NULL THEN 'unknown_user'
         WHEN e.template_id IS NOT NULL AND t.id IS NULL THEN 'unknown_template'
         ELSE 'self_referral'
       END AS reason
  FROM usage_events e
  LEFT JOIN users u ON u.id = e.user_id
  LEFT JOIN templates t ON t.id = e.template_id
  LEFT JOIN referrals s ON s.referred_user_id = e.user_id AND s.referrer_id = s.referred_user_id
 WHERE (e.occurred_at < $1 OR e.occurred_at > $2)
   AND (e.amount_usd = 'NaN' OR abs(e.amount_usd) > $3 OR e.occurred_at > $2 OR u.id IS NULL
        OR (e.template_id IS NOT NULL AND t.id IS NULL)
        OR (s.referred_user_id IS NOT NULL AND e.occurred_at >= s.referred_at));
