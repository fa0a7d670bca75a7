-- Rows a run considers: usage before the cutoff, plus rows dated beyond the believable future.
-- $1 cutoff, $2 latest believable occurred_at.
SELECT count(*) FROM usage_events WHERE occurred_at < $1 OR occurred_at > $2;
