-- Writes a run's grants. A grant whose key (or account chain position) is taken is skipped, and
-- the caller compares the count written with the count planned.
INSERT INTO credit_grants (idempotency_key, program, terms_id, account_id, role, beneficiary_id, template_id,
                           referred_user_id, amount_usd, granted_before_usd, spend_usd, earned_usd,
                           as_of, run_id, payout, bonus_kind, draw_u, draw_entry)
SELECT g.key, g.program, g.terms_id, g.account_id, g.role, g.beneficiary_id, nullif(g.template_id, ''),
       nullif(g.referred_user_id, ''), g.amount, g.granted_before, g.spend, g.earned, $1, $2,
       coalesce(nullif(g.payout, ''), 'credits'), nullif(g.bonus_kind, ''), g.draw_u, g.draw_entry
  FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
              $10::numeric[], $11::numeric[], $12::numeric[], $13::numeric[], $14::text[],
              $15::text[], $16::text[], $17::numeric[], $18::integer[])
       AS g(key, program, account_id, role, beneficiary_id, template_id, referred_user_id,
            amount, granted_before, spend, earned, terms_id, payout, bonus_kind, draw_u, draw_entry)
ON CONFLICT DO NOTHING;
