-- Granted per payout (credits, cash) as of cutoff $1, all programs: at the cutoff itself, and to
-- date (as_of <= cutoff).
SELECT payout,
       count(*) FILTER (WHERE as_of = $1) AS grants_as_of,
       coalesce(sum(amount_usd) FILTER (WHERE as_of = $1), 0) AS granted_as_of,
       coalesce(sum(amount_usd) FILTER (WHERE as_of <= $1), 0) AS granted_to_date
  FROM credit_grants
 GROUP BY payout;
