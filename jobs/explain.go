package jobs

import (
	"context"
	"time"

	"github.com/shopspring/decimal"

	"github.com/runpod/creditrecon/reconcile"
)

// maxExplainedReferrals bounds the referrals an explanation lists.
const maxExplainedReferrals = 200

// Explanation answers "why did this user get, or not get, credits" as of a cutoff.
type Explanation struct {
	BeneficiaryID string
	AsOf          time.Time
	UsageCutoff   time.Time // AsOf less the holding period: usage before it counts
	Terms         reconcile.Terms
	Decisions     []ExplainedDecision // every account paying the beneficiary, all programs
	Referrals     []ReferralBinding   // the beneficiary's referrals (as referrer or referred), at most maxExplainedReferrals
	Grants        []GrantRecord       // every grant to the beneficiary, whatever its cutoff
	Anomalies     int64               // usage rows excluded from earnings as of the cutoff (all users)
}

// ExplainedDecision is an account's decision, with the usage still in the holding period: it
// counts once it is holding_days old.
type ExplainedDecision struct {
	reconcile.Decision
	HeldSpend, HeldEarned decimal.Decimal
}

// Explain evaluates the accounts of one beneficiary as of asOf, exactly as a run would (grants of
// every cutoff count as granted), lists the referrals behind them with their terms versions, and
// the grants written to them. It writes nothing.
func (r *Runner) Explain(ctx context.Context, beneficiaryID string, asOf time.Time) (*Explanation, error) {
	terms := r.Config.terms()
	e := &Explanation{BeneficiaryID: beneficiaryID, AsOf: asOf, Terms: terms}
	base, err := r.base(ctx, RunOptions{AsOf: asOf}, r.Now())
	if err != nil {
		return nil, err
	}
	q := Query{AsOf: asOf, Beneficiary: beneficiaryID}
	err = r.Store.Snapshot(ctx, func(s Snapshot) error {
		in := r.aggregateInput(asOf, r.Now(), Shard{})
		e.UsageCutoff = in.UsageCutoff()
		agg, err := s.Aggregate(ctx, 0, in, base)
		if err != nil {
			return err
		}
		e.Anomalies = agg.Anomalies
		err = evaluate(ctx, s, terms, r.Config.DrawSecret, q, false, func(d reconcile.Decision, _ int64) error {
			if d.BeneficiaryID == beneficiaryID {
				e.Decisions = append(e.Decisions, ExplainedDecision{Decision: d})
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := s.Referrals(ctx, q, maxExplainedReferrals, func(b ReferralBinding) error {
			e.Referrals = append(e.Referrals, b)
			return nil
		}); err != nil {
			return err
		}
		if err := s.Grants(ctx, GrantFilter{Beneficiary: beneficiaryID}, func(g GrantRecord) error {
			e.Grants = append(e.Grants, g)
			return nil
		}); err != nil {
			return err
		}
		if terms.HoldingDays == 0 {
			return nil
		}
		// What the holding period keeps back: the same accounts with nothing held, less the above.
		unheld := terms
		unheld.HoldingDays = 0
		in.Terms = unheld
		if _, err := s.Aggregate(ctx, 0, in, nil); err != nil {
			return err
		}
		return evaluate(ctx, s, unheld, r.Config.DrawSecret, q, false, func(d reconcile.Decision, _ int64) error {
			for i, x := range e.Decisions {
				if x.Program == d.Program && x.TermsID == d.TermsID && x.AccountID == d.AccountID && x.Role == d.Role {
					e.Decisions[i].HeldSpend = d.Spend.Sub(x.Spend)
					e.Decisions[i].HeldEarned = d.Earned.Sub(x.Earned)
				}
			}
			return nil
		})
	})
	return e, err
}
