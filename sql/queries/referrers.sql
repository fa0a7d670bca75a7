-- Referral Program accounts of runs $1 as of their cutoff $2 (SPEC 2.2, 7.2): per referrer and
-- terms version (by run $6's terms), the referrals before the cutoff bound to the version (and
-- those it excludes as not new accounts), their spend and earnings, acceptance, and grants. $3
-- only this referrer (NULL: all); $4/$5 only the referrers of this shard (count 1: all). A
-- sharded run's referrals count for the referrers of its own shard: the shards of a night, read
-- together, count each referral once. terms_id '' holds referrals made before the first version.
WITH counts AS (
  -- The referred users' creation is read only when a version has an account-age limit: without
  -- one, the users' scan has a false one-time filter and never runs; with one, they are hashed
  -- once (a lookup per referral cost a fifth more). The OFFSET evaluates the test once per
  -- referral (flattened, each FILTER evaluated it again).
  SELECT r.referrer_id, coalesce(rt.terms_id, '') AS terms_id,
         count(*) FILTER (WHERE n.new) AS referrals, count(*) - count(*) FILTER (WHERE n.new) AS not_new
    FROM referrals r
    LEFT JOIN run_terms rt ON rt.run_id = $6 AND rt.program = 'referral'
                          AND r.referred_at >= rt.valid_from AND r.referred_at < rt.valid_to
    LEFT JOIN (SELECT id, created_at FROM users
                WHERE EXISTS (SELECT FROM run_terms WHERE run_id = $6 AND program = 'referral' AND max_account_age IS NOT NULL)) u
           ON u.id = r.referred_user_id
   CROSS JOIN LATERAL (SELECT creditrecon_new_account(u.created_at, r.referred_at, rt.max_account_age) AS new OFFSET 0) n
   WHERE r.referred_at < $2 AND r.referrer_id <> r.referred_user_id
     AND ($3::text IS NULL OR r.referrer_id = $3)
     AND ($4::integer = 1 OR creditrecon_shard(r.referrer_id, $4) = $5)
   GROUP BY 1, 2
), spend AS (
  -- Each referral's usage under its own version, and from an enrollment under its referrer's tier.
  SELECT x.referrer_id, x.terms_id, sum(x.usage_rows) AS usage_rows, sum(x.spend) AS spend, sum(x.earned) AS earned
    FROM run_referrals a
    LEFT JOIN recon_runs r ON r.id = a.run_id
   CROSS JOIN LATERAL (VALUES (a.referrer_id, coalesce(a.terms_id, ''), a.usage_rows, a.spend_usd, a.earned_usd),
                              (a.referrer_id, a.tier_terms_id, a.tier_rows, a.tier_spend_usd, a.tier_earned_usd))
         AS x (referrer_id, terms_id, usage_rows, spend, earned)
   WHERE a.run_id = ANY($1) AND ($3::text IS NULL OR a.referrer_id = $3) AND x.terms_id IS NOT NULL
     AND (r.shard_count IS NULL OR creditrecon_shard(a.referrer_id, r.shard_count) = r.shard_index)
   GROUP BY 1, 2
), later AS (
  -- Grants after the cutoff (a backfill's view of an older cutoff), to take off the totals.
  SELECT program, terms_id, account_id, role, sum(amount_usd) AS later
    FROM credit_grants
   WHERE as_of > $2
   GROUP BY program, terms_id, account_id, role
), granted AS (
  SELECT a.account_id AS referrer_id, a.terms_id, a.granted_usd AS granted, a.granted_usd - coalesce(l.later, 0) AS granted_as_of
    FROM credit_accounts a
    LEFT JOIN later l USING (program, terms_id, account_id, role)
   WHERE a.program = 'referral' AND ($3::text IS NULL OR a.account_id = $3)
     AND ($4::integer = 1 OR creditrecon_shard(a.account_id, $4) = $5)
)
SELECT referrer_id, terms_id,
       coalesce(c.referrals, 0) AS referrals,
       coalesce(c.not_new, 0) AS not_new,
       coalesce(s.usage_rows, 0) AS usage_rows,
       coalesce(s.spend, 0) AS spend,
       coalesce(s.earned, 0) AS earned,
       a.referrer_id IS NOT NULL AS accepted,
       coalesce(g.granted, 0) AS granted,
       coalesce(g.granted_as_of, 0) AS granted_as_of
  FROM counts c
  FULL JOIN granted g USING (referrer_id, terms_id)
  FULL JOIN spend s USING (referrer_id, terms_id) -- a partner tier's account has spend, and no referral bound to it
  LEFT JOIN referral_acceptances a USING (referrer_id)
 ORDER BY referrer_id COLLATE "C", terms_id COLLATE "C";
