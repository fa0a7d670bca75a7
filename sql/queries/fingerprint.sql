-- What attributes old usage: the referrals made before cutoff $1 (with their referred users'
-- creation, which new-account limits read), the templates created before it, and the partner
-- tier enrollments. An incremental run requires its base's fingerprint to be unchanged. Sums of
-- 64-bit hashes and counts need no sort; any change to a row changes them, bar a 2^-64 coincidence.
SELECT concat_ws('/',
         (SELECT count(*) || ':' || coalesce(sum(hashtextextended(r.referred_user_id || '|' || r.referrer_id || '|' || r.referred_at::text
                                                                    || '|' || u.created_at::text, 0)::numeric), 0)
            FROM referrals r JOIN users u ON u.id = r.referred_user_id WHERE r.referred_at < $1),
         (SELECT count(*) || ':' || coalesce(sum(hashtextextended(id || '|' || creator_id, 0)::numeric), 0)
            FROM templates WHERE created_at < $1),
         (SELECT count(*) || ':' || coalesce(sum(hashtextextended(referrer_id || '|' || tier || '|' || enrolled_from::text, 0)::numeric), 0)
            FROM partner_enrollments));
