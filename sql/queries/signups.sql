-- Signup bonus accounts of runs $1 as of their cutoff $2 (SPEC 8.1): per referral bound to a
-- signup version, or with a bonus granted, the loads, both countries and the bonuses granted per
-- role. $3 only referrals where this user is referrer or referred (NULL: all); $4/$5 only the
-- referred users of this shard (count 1: all). A sharded run's referrals count for the referred
-- users of its own shard.
WITH loads AS (
  SELECT a.referred_user_id, a.terms_id, a.referrer_id, a.loads_usd, a.referrer_country, a.referred_country
    FROM run_signups a
    LEFT JOIN recon_runs r ON r.id = a.run_id
   WHERE a.run_id = ANY($1)
     AND ($3::text IS NULL OR a.referrer_id = $3 OR a.referred_user_id = $3)
     AND ($4::integer = 1 OR creditrecon_shard(a.referred_user_id, $4) = $5)
     AND (r.shard_count IS NULL OR creditrecon_shard(a.referred_user_id, r.shard_count) = r.shard_index)
), later AS (
  -- Grants after the cutoff (a backfill's view of an older cutoff), to take off the totals.
  SELECT program, terms_id, account_id, role, sum(amount_usd) AS later
    FROM credit_grants
   WHERE as_of > $2 AND program = 'signup_bonus'
   GROUP BY program, terms_id, account_id, role
), granted AS (
  SELECT a.account_id AS referred_user_id, a.terms_id,
         max(a.beneficiary_id) FILTER (WHERE a.role = 'referrer') AS referrer_id,
         coalesce(sum(a.granted_usd) FILTER (WHERE a.role = 'referrer'), 0) AS granted_referrer,
         coalesce(sum(a.granted_usd) FILTER (WHERE a.role = 'referred'), 0) AS granted_referred,
         coalesce(sum(a.granted_usd - coalesce(l.later, 0)) FILTER (WHERE a.role = 'referrer'), 0) AS granted_referrer_as_of,
         coalesce(sum(a.granted_usd - coalesce(l.later, 0)) FILTER (WHERE a.role = 'referred'), 0) AS granted_referred_as_of
    FROM credit_accounts a
    LEFT JOIN later l USING (program, terms_id, account_id, role)
   WHERE a.program = 'signup_bonus'
     AND ($3::text IS NULL OR a.account_id = $3 OR a.beneficiary_id = $3)
     AND ($4::integer = 1 OR creditrecon_shard(a.account_id, $4) = $5)
   GROUP BY a.account_id, a.terms_id
)
SELECT referred_user_id, terms_id,
       coalesce(s.referrer_id, r.referrer_id, g.referrer_id) AS referrer_id,
       coalesce(s.loads_usd, 0) AS loads,
       s.referrer_country, s.referred_country,
       coalesce(g.granted_referrer, 0) AS granted_referrer,
       coalesce(g.granted_referred, 0) AS granted_referred,
       coalesce(g.granted_referrer_as_of, 0) AS granted_referrer_as_of,
       coalesce(g.granted_referred_as_of, 0) AS granted_referred_as_of
  FROM loads s
  FULL JOIN granted g USING (referred_user_id, terms_id)
  LEFT JOIN referrals r USING (referred_user_id)
 ORDER BY referred_user_id COLLATE "C", terms_id COLLATE "C";
