-- Whether base run $1's view of old usage still holds: none of its unknown users or templates
-- has appeared since. (Its fingerprint covers referrals and templates.)
SELECT NOT EXISTS (
  SELECT FROM run_anomalies a
   WHERE a.run_id = $1
     AND ((a.reason = 'unknown_user' AND EXISTS (SELECT FROM users u WHERE u.id = a.user_id))
       OR (a.reason = 'unknown_template' AND EXISTS (SELECT FROM templates t WHERE t.id = a.template_id))));
