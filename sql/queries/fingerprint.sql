-- What attributes old usage as of cutoff $1, and as of cutoff $2 (a base run's; NULL for none):
-- the referrals made before the cutoff (with their referred users' creation when run $3's terms
-- have a new-account limit, which reads it), the templates created before it, and the partner
-- tier enrollments. An incremental run requires its base's fingerprint to be unchanged (its
-- terms are this run's, or it is no base); both come from one pass. Sums of 64-bit hashes and
-- counts need no sort; any change to a row changes them, bar a 2^-64 coincidence.
WITH ages AS (
  SELECT EXISTS (SELECT FROM run_terms WHERE run_id = $3 AND max_account_age IS NOT NULL) AS read
), r AS (
  -- One branch runs, by the terms (the other's one-time filter is false): without a limit the
  -- users are not read; with one they are hashed once, where a lookup per referral cost twice as
  -- much. The OFFSET hashes each referral once (flattened, each FILTER hashed it again).
  SELECT count(*) FILTER (WHERE r.referred_at < $1) AS n1, sum(h) FILTER (WHERE r.referred_at < $1) AS h1,
         count(*) FILTER (WHERE r.referred_at < $2) AS n2, sum(h) FILTER (WHERE r.referred_at < $2) AS h2
    FROM (SELECT r.referred_user_id, r.referrer_id, r.referred_at, NULL::timestamptz AS created_at
            FROM referrals r
           WHERE r.referred_at < greatest($1::timestamptz, $2::timestamptz) AND NOT (SELECT read FROM ages)
          UNION ALL
          SELECT r.referred_user_id, r.referrer_id, r.referred_at, u.created_at
            FROM referrals r
            LEFT JOIN users u ON u.id = r.referred_user_id
           WHERE r.referred_at < greatest($1::timestamptz, $2::timestamptz) AND (SELECT read FROM ages)) r
   CROSS JOIN LATERAL (SELECT hashtextextended(concat_ws('|', r.referred_user_id, r.referrer_id, r.referred_at::text, r.created_at::text),
                                               0)::numeric AS h OFFSET 0) x
), t AS (
  SELECT count(*) FILTER (WHERE created_at < $1) AS n1, sum(h) FILTER (WHERE created_at < $1) AS h1,
         count(*) FILTER (WHERE created_at < $2) AS n2, sum(h) FILTER (WHERE created_at < $2) AS h2
    FROM templates
   CROSS JOIN LATERAL (SELECT hashtextextended(id || '|' || creator_id, 0)::numeric AS h) x
   WHERE created_at < greatest($1, $2)
), p AS (
  SELECT count(*) || ':' || coalesce(sum(hashtextextended(referrer_id || '|' || tier || '|' || enrolled_from::text, 0)::numeric), 0) AS fp
    FROM partner_enrollments
)
SELECT concat_ws('/', r.n1 || ':' || coalesce(r.h1, 0), t.n1 || ':' || coalesce(t.h1, 0), p.fp) AS current,
       CASE WHEN $2 IS NOT NULL THEN concat_ws('/', r.n2 || ':' || coalesce(r.h2, 0), t.n2 || ':' || coalesce(t.h2, 0), p.fp) END AS base
  FROM r, t, p;
