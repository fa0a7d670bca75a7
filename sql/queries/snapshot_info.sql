-- When this snapshot was taken, and since when rows may have been in flight at that moment:
-- $1 (the margin) before it, or the start of the oldest transaction open in this database that
-- this role can see, whichever is earlier.
SELECT now() AS snapshot_at,
       least(now() - $1::interval,
             (SELECT min(xact_start) FROM pg_stat_activity
               WHERE datname = current_database() AND pid <> pg_backend_pid())) AS seen_since;
