-- verify (e): a run still "running" is alive: the session that started it (backend_pid) holds the
-- run lock, pg_try_advisory_lock(hashtext('creditrecon.run')). A bigint advisory lock shows in
-- pg_locks as classid (high 32 bits) and objid (low 32 bits) with objsubid 1.
WITH holders AS (
  SELECT pid
    FROM pg_locks
   WHERE locktype = 'advisory' AND granted AND objsubid = 1
     AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
     AND ((classid::bigint << 32) | objid::bigint) = hashtext('creditrecon.run')::bigint
), bad AS (
  SELECT id, 'run ' || id || ' (as of ' || as_of::text || ', started ' || started_at::text || ' by backend ' ||
         backend_pid || ') is running but its session does not hold the run lock' AS example
    FROM recon_runs
   WHERE status = 'running' AND backend_pid NOT IN (SELECT pid FROM holders)
)
SELECT 'running' AS name, 'no run left running without the lock' AS title,
       (SELECT count(*) FROM recon_runs WHERE status = 'running') AS checked,
       count(*) AS failed,
       coalesce((array_agg(example ORDER BY id))[1:5], '{}') AS examples
  FROM bad;
