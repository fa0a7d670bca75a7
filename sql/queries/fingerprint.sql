-- What attributes old usage: the referrals made before cutoff $1 and the templates created before
-- it. An incremental run requires its base's fingerprint to be unchanged.
SELECT md5(coalesce((SELECT string_agg(referred_user_id || '|' || referrer_id || '|' || referred_at::text, ','
                                         ORDER BY referred_user_id)
                       FROM referrals WHERE referred_at < $1), '') || '#' ||
           coalesce((SELECT string_agg(id || '|' || creator_id, ',' ORDER BY id)
                       FROM templates WHERE created_at < $1), ''));
