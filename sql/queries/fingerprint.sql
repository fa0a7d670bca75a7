-- What attributes old usage: the referrals made before cutoff $1 and the templates created before
-- it. An incremental run requires its base's fingerprint to be unchanged. Sums of 64-bit hashes
-- and counts need no sort; any change to a row changes them, bar a 2^-64 coincidence.
SELECT concat_ws('/',
         (SELECT count(*) || ':' || coalesce(sum(hashtextextended(referred_user_id || '|' || referrer_id || '|' || referred_at::text, 0)::numeric), 0)
            FROM referrals WHERE referred_at < $1),
         (SELECT count(*) || ':' || coalesce(sum(hashtextextended(id || '|' || creator_id, 0)::numeric), 0)
            FROM templates WHERE created_at < $1));
