-- Usage rows that cannot be attributed or are invalid (SPEC 3.4), with the first reason that
-- applies. Every aggregate of the run excludes them, so they earn nothing anywhere. The same scan
-- finds the rows a run records as seen (run_seen): those before the cutoff ingested since $5, its
-- seen_since (NULL: none, when the caller finds them elsewhere), flagged `seen`; their reason is
-- NULL unless they are anomalies too. Scanning the whole history once for both saves a full run a
-- second scan.
-- $1 run, $2 cutoff, $3 latest believable occurred_at (run start + clock skew), $4 largest |amount_usd|.
-- The usage read (a placeholder the caller fills) is usage_events, or the rows an incremental run
-- reads (run_delta). The columns are run_anomalies' and `seen` (see Snapshot.aggregate).
SELECT $1::bigint AS run_id, e.id AS usage_event_id,
       CASE
         WHEN NOT isfinite(e.occurred_at) THEN 'occurred_at_infinite'
         WHEN e.amount_usd = 'NaN' THEN 'amount_nan'
         WHEN e.amount_usd > $4 OR e.amount_usd < -$4 THEN 'amount_out_of_range'
         WHEN e.occurred_at > $3 THEN 'occurred_in_future'
         WHEN u.id IS NULL THEN 'unknown_user'
         WHEN e.template_id IS NOT NULL AND t.id IS NULL THEN 'unknown_template'
         WHEN s.referred_user_id IS NOT NULL AND e.occurred_at >= s.referred_at THEN 'self_referral'
       END AS reason,
       e.user_id, e.product, e.template_id, e.amount_usd::text AS amount_usd, e.occurred_at,
       coalesce(e.ingested_at >= $5 AND e.occurred_at < $2, false) AS seen
  FROM {{usage}} e
  LEFT JOIN users u ON u.id = e.user_id
  LEFT JOIN templates t ON t.id = e.template_id
  LEFT JOIN referrals s ON s.referred_user_id = e.user_id AND s.referrer_id = s.referred_user_id
 WHERE (e.occurred_at < $2 OR e.occurred_at > $3)
   AND (NOT isfinite(e.occurred_at) OR e.amount_usd = 'NaN' OR e.amount_usd > $4 OR e.amount_usd < -$4 OR e.occurred_at > $3 OR u.id IS NULL
        OR (e.template_id IS NOT NULL AND t.id IS NULL)
        OR (s.referred_user_id IS NOT NULL AND e.occurred_at >= s.referred_at)
        OR (e.ingested_at >= $5 AND e.occurred_at < $2));
