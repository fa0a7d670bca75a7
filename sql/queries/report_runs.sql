-- The runs the reports of cutoff $1 render from: its newest run that committed grants or, when
-- that run is a shard of N, the newest committed run of each shard of N since the cutoff's last
-- unsharded run (the caller checks that all N are there). Runs in shard order.
WITH newest AS (
  SELECT id AS newest_id, shard_count AS newest_count
    FROM recon_runs
   WHERE as_of = $1 AND grants_committed_at IS NOT NULL
   ORDER BY id DESC
   LIMIT 1
), unsharded AS (
  SELECT coalesce(max(id), 0) AS unsharded_id
    FROM recon_runs
   WHERE as_of = $1 AND grants_committed_at IS NOT NULL AND shard_count IS NULL
)
SELECT DISTINCT ON (coalesce(shard_index, 0)) {{columns}}
  FROM recon_runs, newest, unsharded
 WHERE as_of = $1 AND grants_committed_at IS NOT NULL
   AND ((newest_count IS NULL AND id = newest_id) OR (shard_count = newest_count AND id > unsharded_id))
 ORDER BY coalesce(shard_index, 0), id DESC;
