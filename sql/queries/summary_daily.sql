-- The summary page's trend: grants with $1 < as_of <= $2 per cutoff, program and payout.
-- credit_grants has no payout column until cash tiers exist (SPEC 8.2): every grant is credits.
SELECT as_of, program, 'credits' AS payout, count(*) AS grants, sum(amount_usd) AS amount_usd
  FROM credit_grants
 WHERE as_of > $1 AND as_of <= $2
 GROUP BY as_of, program
 ORDER BY as_of, program;
