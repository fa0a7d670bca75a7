-- Grants by cutoff and/or beneficiary, in id order. $1 as_of (NULL: any), $2 beneficiary (NULL: any).
SELECT id, idempotency_key, program, terms_id, account_id, role, beneficiary_id,
       coalesce(template_id, '') AS template_id, coalesce(referred_user_id, '') AS referred_user_id,
       amount_usd, granted_before_usd, spend_usd, earned_usd, as_of, run_id, created_at, payout,
       coalesce(bonus_kind, '') AS bonus_kind, draw_u, draw_entry
  FROM credit_grants
 WHERE ($1::timestamptz IS NULL OR as_of = $1)
   AND ($2::text IS NULL OR beneficiary_id = $2)
 ORDER BY id;
