-- Rows a full run considers: usage before the cutoff, and rows dated beyond the believable future
-- (always anomalies). $1 cutoff, $2 latest believable occurred_at.
SELECT count(*) FILTER (WHERE occurred_at < $1) AS before, count(*) FILTER (WHERE occurred_at > $2) AS future
  FROM usage_events
 WHERE occurred_at < $1 OR occurred_at > $2;
