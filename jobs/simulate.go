package jobs

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/runpod/creditrecon/reconcile"
)

// Simulation prices proposed terms against the current ones (SPEC 7.4): both plans of one cutoff
// on one snapshot of the database.
type Simulation struct {
	AsOf     time.Time         `json:"as_of"`
	Versions []VersionCompared `json:"versions"` // per program and version, in program then version order
	Movers   []Mover           `json:"movers"`   // the accounts whose target changes most, at most ten
}

// VersionCompared sets a program version's totals under the current terms beside those under the
// proposed ones; a version only one side has is zero on the other.
type VersionCompared struct {
	Program  reconcile.Program `json:"program"`
	TermsID  string            `json:"terms_id"`
	Current  VersionTotals     `json:"current"`
	Proposed VersionTotals     `json:"proposed"`
	// TargetDiff and OwedDiff are proposed less current.
	TargetDiff decimal.Decimal `json:"target_diff_usd"`
	OwedDiff   decimal.Decimal `json:"owed_diff_usd"`
}

// VersionTotals add up a version's accounts as of the cutoff.
type VersionTotals struct {
	Accounts int64           `json:"accounts"`
	Eligible int64           `json:"eligible"`
	Earned   decimal.Decimal `json:"earned_usd"`
	Target   decimal.Decimal `json:"target_usd"`
	Granted  decimal.Decimal `json:"granted_usd"` // granted so far, whatever the cutoff
	Owed     decimal.Decimal `json:"owed_usd"`    // what a run would grant now
}

func (t *VersionTotals) add(d reconcile.Decision) {
	if d.Role != reconcile.RoleReferred {
		t.Accounts++
	}
	if d.Eligible {
		t.Eligible++
	}
	t.Earned = t.Earned.Add(d.Earned)
	t.Target = t.Target.Add(d.Target)
	t.Granted = t.Granted.Add(d.Granted)
	t.Owed = t.Owed.Add(d.Owed)
}

// Mover is an account whose target (over all its versions) differs between the two terms.
type Mover struct {
	Program       reconcile.Program `json:"program"`
	AccountID     string            `json:"account_id"`
	Role          string            `json:"role,omitempty"`
	BeneficiaryID string            `json:"beneficiary_id"`
	Current       decimal.Decimal   `json:"current_target_usd"`
	Proposed      decimal.Decimal   `json:"proposed_target_usd"`
	Diff          decimal.Decimal   `json:"diff_usd"`
}

// Simulate plans cutoff asOf under the current terms and under proposed, on one snapshot, and
// compares them. Retroactive proposals are the point, so the append-only rules do not apply. It
// takes no lock and writes nothing: the snapshot's scratch aggregates are rolled back.
func (r *Runner) Simulate(ctx context.Context, proposed reconcile.Terms, asOf time.Time) (*Simulation, error) {
	if now := r.Now(); asOf.After(now) {
		return nil, fmt.Errorf("as-of %s is in the future (now %s): a cutoff must have passed", asOf.Format(time.RFC3339), now.Format(time.RFC3339))
	}
	if len(proposed.Signup) > 0 {
		missing, err := r.Store.MissingSources(ctx)
		if err != nil {
			return nil, err
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("%w: the proposed terms have a signup bonus; this database has no %s", ErrMissingSource, strings.Join(missing, " and "))
		}
	}
	type versionKey struct {
		program reconcile.Program
		id      string
	}
	type accountKey struct {
		program                    reconcile.Program
		account, role, beneficiary string
	}
	versions := map[versionKey]*VersionCompared{}
	targets := map[accountKey]*Mover{}
	side := func(t reconcile.Terms, current bool) func(s Snapshot) error {
		return func(s Snapshot) error {
			in := r.aggregateInput(asOf, r.Now(), Shard{})
			in.Terms = t
			if _, err := s.Aggregate(ctx, 0, in, nil); err != nil {
				return err
			}
			return evaluate(ctx, s, t, r.Config.DrawSecret, Query{AsOf: asOf}, false, func(d reconcile.Decision, _ int64) error {
				vk := versionKey{d.Program, d.TermsID}
				v := versions[vk]
				if v == nil {
					v = &VersionCompared{Program: d.Program, TermsID: d.TermsID}
					versions[vk] = v
				}
				ak := accountKey{d.Program, d.AccountID, d.Role, d.BeneficiaryID}
				m := targets[ak]
				if m == nil {
					m = &Mover{Program: d.Program, AccountID: d.AccountID, Role: d.Role, BeneficiaryID: d.BeneficiaryID}
					targets[ak] = m
				}
				if current {
					v.Current.add(d)
					m.Current = m.Current.Add(d.Target)
				} else {
					v.Proposed.add(d)
					m.Proposed = m.Proposed.Add(d.Target)
				}
				return nil
			})
		}
	}
	err := r.Store.Snapshot(ctx, func(s Snapshot) error {
		if err := side(r.Config.terms(), true)(s); err != nil {
			return fmt.Errorf("plan under the current terms: %w", err)
		}
		if err := side(proposed, false)(s); err != nil {
			return fmt.Errorf("plan under the proposed terms: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("simulate as_of=%s: %w", asOf.Format(time.RFC3339), err)
	}
	sim := &Simulation{AsOf: asOf, Versions: []VersionCompared{}, Movers: []Mover{}}
	for _, v := range versions {
		v.TargetDiff = v.Proposed.Target.Sub(v.Current.Target)
		v.OwedDiff = v.Proposed.Owed.Sub(v.Current.Owed)
		sim.Versions = append(sim.Versions, *v)
	}
	order := map[reconcile.Program]int{}
	for i, p := range reconcile.Programs {
		order[p] = i
	}
	slices.SortFunc(sim.Versions, func(a, b VersionCompared) int {
		return cmp.Or(cmp.Compare(order[a.Program], order[b.Program]), cmp.Compare(a.TermsID, b.TermsID))
	})
	for _, m := range targets {
		if m.Diff = m.Proposed.Sub(m.Current); !m.Diff.IsZero() {
			sim.Movers = append(sim.Movers, *m)
		}
	}
	slices.SortFunc(sim.Movers, func(a, b Mover) int {
		return cmp.Or(b.Diff.Abs().Cmp(a.Diff.Abs()), cmp.Compare(order[a.Program], order[b.Program]),
			cmp.Compare(a.AccountID, b.AccountID), cmp.Compare(a.Role, b.Role), cmp.Compare(a.BeneficiaryID, b.BeneficiaryID))
	})
	sim.Movers = sim.Movers[:min(len(sim.Movers), 10)]
	return sim, nil
}
