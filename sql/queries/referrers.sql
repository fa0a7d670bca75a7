-- Referral Program accounts of runs $1 as of their cutoff $2 (SPEC 2.2): referrals before the
-- cutoff, their spend, acceptance, and grants. $3 only this referrer (NULL: all); $4/$5 only the
-- referrers of this shard (count 1: all). A sharded run's referrals count for the referrers of
-- its own shard: the shards of a night, read together, count each referral once.
WITH counts AS (
  SELECT referrer_id, count(*) AS referrals
    FROM referrals
   WHERE referred_at < $2 AND referrer_id <> referred_user_id
     AND ($3::text IS NULL OR referrer_id = $3)
     AND ($4::integer = 1 OR creditrecon_shard(referrer_id, $4) = $5)
   GROUP BY referrer_id
), spend AS (
  SELECT a.referrer_id, sum(a.usage_rows) AS usage_rows, sum(a.spend_usd) AS spend
    FROM run_referrals a
    LEFT JOIN recon_runs r ON r.id = a.run_id
   WHERE a.run_id = ANY($1) AND ($3::text IS NULL OR a.referrer_id = $3)
     AND (r.shard_count IS NULL OR creditrecon_shard(a.referrer_id, r.shard_count) = r.shard_index)
   GROUP BY a.referrer_id
), later AS (
  -- Grants after the cutoff (a backfill's view of an older cutoff), to take off the totals.
  SELECT program, account_id, role, sum(amount_usd) AS later
    FROM credit_grants
   WHERE as_of > $2
   GROUP BY program, account_id, role
), granted AS (
  SELECT a.account_id AS referrer_id, a.granted_usd AS granted, a.granted_usd - coalesce(l.later, 0) AS granted_as_of
    FROM credit_accounts a
    LEFT JOIN later l USING (program, account_id, role)
   WHERE a.program = 'referral' AND ($3::text IS NULL OR a.account_id = $3)
     AND ($4::integer = 1 OR creditrecon_shard(a.account_id, $4) = $5)
)
SELECT referrer_id,
       coalesce(c.referrals, 0) AS referrals,
       coalesce(s.usage_rows, 0) AS usage_rows,
       coalesce(s.spend, 0) AS spend,
       a.referrer_id IS NOT NULL AS accepted,
       coalesce(g.granted, 0) AS granted,
       coalesce(g.granted_as_of, 0) AS granted_as_of
  FROM counts c
  FULL JOIN granted g USING (referrer_id)
  LEFT JOIN spend s USING (referrer_id)
  LEFT JOIN referral_acceptances a USING (referrer_id)
 ORDER BY referrer_id COLLATE "C";
