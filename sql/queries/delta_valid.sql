-- Whether base run $1's view of old usage still holds: none of its unknown users or templates
-- has appeared since. (Its fingerprint covers referrals and templates.) Written as joins, so that
-- the few anomalies probe the users' key; as EXISTS subqueries the planner hashed every user.
SELECT NOT EXISTS (SELECT FROM run_anomalies a JOIN users u ON u.id = a.user_id
                    WHERE a.run_id = $1 AND a.reason = 'unknown_user')
   AND NOT EXISTS (SELECT FROM run_anomalies a JOIN templates t ON t.id = a.template_id
                    WHERE a.run_id = $1 AND a.reason = 'unknown_template');
