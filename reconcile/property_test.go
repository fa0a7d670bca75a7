package reconcile

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/shopspring/decimal"
)

// history is one account's usage split into n nightly increments: cumulative totals per cutoff
// index 0..n (index 0 is before any usage).
type history struct {
	spend     []decimal.Decimal
	referrals []int64
	runtime   []int64
}

func randomHistory(rng *rand.Rand, refunds bool) history {
	n := 1 + rng.IntN(30)
	h := history{spend: make([]decimal.Decimal, n+1), referrals: make([]int64, n+1), runtime: make([]int64, n+1)}
	h.spend[0] = decimal.Zero
	for k := 1; k <= n; k++ {
		// Up to $400 a night with sub-cent digits, so remainders have to carry.
		inc := decimal.New(rng.Int64N(40_000_000), -5)
		if refunds && rng.IntN(4) == 0 {
			inc = inc.Neg()
		}
		h.spend[k] = h.spend[k-1].Add(inc)
		h.referrals[k] = h.referrals[k-1] + rng.Int64N(4)
		h.runtime[k] = h.runtime[k-1] + rng.Int64N(20_000)
	}
	return h
}

// randomRuns picks the cutoffs of a sequence of runs: the last cutoff always, others at random,
// repeats allowed (re-runs), in order or shuffled (backfills after newer runs).
func randomRuns(rng *rand.Rand, n int, shuffled bool) []int {
	runs := []int{n}
	for range rng.IntN(2 * n) {
		runs = append(runs, 1+rng.IntN(n))
	}
	if shuffled {
		rng.Shuffle(len(runs), func(i, j int) { runs[i], runs[j] = runs[j], runs[i] })
	} else {
		slices.Sort(runs)
	}
	return runs
}

// TestRunsConverge simulates nightly runs (granted += owed) over random histories and checks
// SPEC 2: the total granted is the largest target any run computed, and without refunds it is
// FloorToCent(rate x total spend) whenever the run at the last cutoff was eligible, whatever the
// split into runs and their order.
func TestRunsConverge(t *testing.T) {
	p := DefaultParams()
	rng := rand.New(rand.NewPCG(20250302, 2))
	converged := 0 // cases that checked the FloorToCent(rate x total) equality
	for i := range 2000 {
		shuffled, refunds, template := i%2 == 1, i%3 == 2, i%5 >= 3
		h := randomHistory(rng, refunds)
		n := len(h.spend) - 1
		runs := randomRuns(rng, n, shuffled)
		acceptedFrom := rng.IntN(len(runs) + 1) // run index from which acceptance is recorded

		granted, maxTarget := decimal.Zero, decimal.Zero
		var lastEligible bool
		keys := map[string]int{}
		eval := func(j, c int, granted decimal.Decimal) Decision {
			if template {
				return p.EvaluateTemplate(TemplateTotals{TemplateID: "tpl", CreatorID: "alice", RuntimeSeconds: h.runtime[c], Spend: h.spend[c], Granted: granted})
			}
			return p.EvaluateReferrer(ReferrerTotals{ReferrerID: "r", Referrals: h.referrals[c], Spend: h.spend[c], Accepted: j >= acceptedFrom, Granted: granted})
		}
		for j, c := range runs {
			d := eval(j, c, granted)
			if d.Owed.IsNegative() || !wholeCents(d.Owed) {
				t.Fatalf("case %d run %d (cutoff %d): got owed %s, want >= 0 in whole cents", i, j, c, d.Owed)
			}
			if d.Target.IsNegative() || !wholeCents(d.Target) {
				t.Fatalf("case %d run %d: got target %s, want >= 0 in whole cents", i, j, d.Target)
			}
			// Clawback is what refunds took back from what was paid, eligible or not.
			if want := decimal.Max(granted.Sub(decimal.Max(FloorToCent(d.Earned), decimal.Zero)), decimal.Zero); !d.ClawbackDue.Equal(want) {
				t.Fatalf("case %d run %d: got clawback %s, want %s (granted %s, target %s)", i, j, d.ClawbackDue, want, granted, d.Target)
			}
			if !shuffled && !refunds && d.ClawbackDue.IsPositive() {
				t.Fatalf("case %d run %d: got clawback %s in ordered runs without refunds, want 0", i, j, d.ClawbackDue)
			}
			if g, ok := d.Grant(asOf); ok {
				if !g.Amount.IsPositive() || !wholeCents(g.Amount) {
					t.Fatalf("case %d run %d: got grant %s, want > 0 in whole cents", i, j, g.Amount)
				}
				if prev, dup := keys[g.IdempotencyKey]; dup {
					t.Fatalf("case %d: runs %d and %d both granted under key %q", i, prev, j, g.IdempotencyKey)
				}
				keys[g.IdempotencyKey] = j
				granted = granted.Add(g.Amount)
			}
			// Re-running the same cutoff straight away writes nothing.
			if again := eval(j, c, granted); again.Owed.IsPositive() {
				t.Fatalf("case %d run %d: re-run got owed %s, want 0", i, j, again.Owed)
			}
			maxTarget = decimal.Max(maxTarget, d.Target)
			if c == n {
				lastEligible = lastEligible || d.Eligible
			}
		}
		if !granted.Equal(maxTarget) {
			t.Fatalf("case %d (runs %v): got total granted %s, want the largest target %s", i, runs, granted, maxTarget)
		}
		if !refunds && lastEligible {
			rate := p.Referral.Rate
			if template {
				rate = p.Template.Rate
			}
			if want := FloorToCent(h.spend[n].Mul(rate)); !granted.Equal(want) {
				t.Fatalf("case %d (runs %v): got total granted %s, want FloorToCent(%s x %s) = %s", i, runs, granted, rate, h.spend[n], want)
			}
			converged++
		}
	}
	// The generator must reach eligibility often, or the property above says little.
	if converged < 300 {
		t.Errorf("eligible at the last cutoff: got %d cases of 2000, want at least 300", converged)
	}
	t.Logf("%d of 2000 cases eligible at the last cutoff", converged)
}

// TestServerlessRunsGrantOnce checks that the serverless bonus is granted exactly once per role
// over any sequence of runs, refunds included, and never clawed back.
func TestServerlessRunsGrantOnce(t *testing.T) {
	p := DefaultParams()
	rng := rand.New(rand.NewPCG(7, 11))
	for i := range 2000 {
		h := randomHistory(rng, i%2 == 0)
		n := len(h.spend) - 1
		runs := randomRuns(rng, n, i%3 == 0)
		var granted [2]decimal.Decimal
		reached := false
		for j, c := range runs {
			ds := p.EvaluateServerless(ServerlessTotals{ReferredUserID: "u", ReferrerID: "r", Spend: h.spend[c], GrantedReferrer: granted[0], GrantedReferred: granted[1]})
			for k, d := range ds {
				if d.ClawbackDue.IsPositive() || d.Owed.IsNegative() {
					t.Fatalf("case %d run %d %s: got owed %s clawback %s, want owed >= 0 and no clawback", i, j, d.Role, d.Owed, d.ClawbackDue)
				}
				if g, ok := d.Grant(asOf); ok {
					granted[k] = granted[k].Add(g.Amount)
				}
			}
			reached = reached || h.spend[c].GreaterThanOrEqual(p.Serverless.Threshold)
		}
		want := decimal.Zero
		if reached {
			want = dec("500")
		}
		for k := range granted {
			if !granted[k].Equal(want) {
				t.Fatalf("case %d role %d: got total %s, want %s", i, k, granted[k], want)
			}
		}
	}
}
