package jobs

import (
	"context"
	"time"

	"github.com/runpod/creditrecon/reconcile"
)

// Explanation answers "why did this user get, or not get, credits" as of a cutoff.
type Explanation struct {
	BeneficiaryID string
	AsOf          time.Time
	Params        reconcile.Params
	Decisions     []reconcile.Decision // every account paying the beneficiary, all programs
	Grants        []GrantRecord        // every grant to the beneficiary, whatever its cutoff
	Anomalies     int64                // usage rows excluded from earnings as of the cutoff (all users)
}

// Explain evaluates the accounts of one beneficiary as of asOf, exactly as a run would (grants of
// every cutoff count as granted), and lists the grants written to them. It writes nothing.
func (r *Runner) Explain(ctx context.Context, beneficiaryID string, asOf time.Time) (*Explanation, error) {
	e := &Explanation{BeneficiaryID: beneficiaryID, AsOf: asOf, Params: r.Config.Params}
	base, err := r.base(ctx, RunOptions{AsOf: asOf}, r.Now())
	if err != nil {
		return nil, err
	}
	err = r.Store.Snapshot(ctx, func(s Snapshot) error {
		agg, err := s.Aggregate(ctx, 0, r.aggregateInput(asOf, r.Now(), Shard{}), base)
		if err != nil {
			return err
		}
		e.Anomalies = agg.Anomalies
		err = r.Evaluate(ctx, s, Query{AsOf: asOf, Beneficiary: beneficiaryID}, false, func(d reconcile.Decision, _ int64) {
			if d.BeneficiaryID == beneficiaryID {
				e.Decisions = append(e.Decisions, d)
			}
		})
		if err != nil {
			return err
		}
		return s.Grants(ctx, GrantFilter{Beneficiary: beneficiaryID}, func(g GrantRecord) error {
			e.Grants = append(e.Grants, g)
			return nil
		})
	})
	return e, err
}
