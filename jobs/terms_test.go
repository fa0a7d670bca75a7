package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/runpod/creditrecon/jobs"
	"github.com/runpod/creditrecon/reconcile"
	"github.com/runpod/creditrecon/terms"
)

// useTerms makes the fixture's runs use the terms of a YAML text (a terms file).
func (f *fixture) useTerms(yaml string) {
	f.t.Helper()
	t, err := terms.Parse("test.yaml", []byte(yaml))
	if err != nil {
		f.t.Fatalf("terms: %v", err)
	}
	f.r.Config.Terms = jobs.TermsSource{File: "test.yaml", SHA256: "test", Terms: t}
}

// useTermsFile makes the fixture's runs use a shipped terms file.
func (f *fixture) useTermsFile(path string) {
	f.t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		f.t.Fatal(err)
	}
	f.useTerms(string(b))
	f.r.Config.Terms.File = path
}

// grantedIn sums a beneficiary's grants in one version of a program.
func (f *fixture) grantedIn(program reconcile.Program, termsID, beneficiary string) string {
	f.t.Helper()
	var s decimal.Decimal
	if err := f.db.Get(&s, `SELECT coalesce(sum(amount_usd), 0) FROM credit_grants WHERE program = $1 AND terms_id = $2 AND beneficiary_id = $3`,
		program, termsID, beneficiary); err != nil {
		f.t.Fatal(err)
	}
	return s.StringFixed(2)
}

// decision returns the explained decision of a beneficiary's account in a program version.
func (f *fixture) decision(asOf string, beneficiary string, program reconcile.Program, termsID string) jobs.ExplainedDecision {
	f.t.Helper()
	x, err := f.r.Explain(context.Background(), beneficiary, date(asOf))
	if err != nil {
		f.t.Fatal(err)
	}
	for _, d := range x.Decisions {
		if d.Program == program && d.TermsID == termsID {
			return d
		}
	}
	f.t.Fatalf("%s has no %s account of version %s as of %s: %+v", beneficiary, program, termsID, asOf, x.Decisions)
	return jobs.ExplainedDecision{}
}

// runpodHistory is a history that crosses RunPod's change of 16 June 2025.
func runpodHistory(f *fixture) {
	f.exec(`INSERT INTO users VALUES ('beta', '2025-01-01'), ('new', '2025-01-01'), ('sv', '2025-01-01'), ('sv2', '2025-01-01'),
		('maker', '2025-01-01'), ('v1', '2025-03-01'), ('v2', '2025-07-01'), ('n1', '2025-07-01'), ('n2', '2025-08-01'),
		('old1', '2024-01-01'), ('edge', '2025-06-15 00:00:01')`)
	// beta: 25 referrals before the change, $20 of pod each (2% = 10.00); b1's $100 of storage in
	// December and b2's $50 of pod in 2026, long after six months, still earn 2% (2.00 + 1.00).
	f.exec(`INSERT INTO users SELECT 'b' || g, '2025-03-01' FROM generate_series(1, 25) g`)
	f.exec(`INSERT INTO referrals SELECT 'b' || g, 'beta', '2025-03-01' FROM generate_series(1, 25) g`)
	f.exec(`INSERT INTO usage_events (id, user_id, product, amount_usd, occurred_at)
		SELECT g, 'b' || g, 'pod', 20, '2025-04-01' FROM generate_series(1, 25) g`)
	f.usage("b1", "storage", "", "100", 0, "2025-12-01")
	f.usage("b2", "pod", "", "50", 0, "2026-01-15")
	f.accept("beta")
	// beta refers n2 after the change: a second account, 3% of pod = 1.50, without acceptance or
	// thresholds.
	f.exec(`INSERT INTO referrals VALUES ('n2', 'beta', '2025-08-01')`)
	f.usage("n2", "pod", "", "50", 0, "2025-08-15")
	// new refers n1 on 2025-07-01 (its window ends 2026-01-01 00:00): pod 3.00, serverless 5.00,
	// storage nothing, pod a second before the end 3.00, pod at the end nothing, $1,000 of
	// serverless 50.00 and no serverless bonus: 61.00. old1, created 18 months before its
	// referral, is not a new account. edge, created 23h59m59s before its referral, is.
	f.exec(`INSERT INTO referrals VALUES ('n1', 'new', '2025-07-01'), ('old1', 'new', '2025-07-01'), ('edge', 'new', '2025-06-16')`)
	f.usage("n1", "pod", "", "100", 0, "2025-08-01")
	f.usage("n1", "serverless", "", "100", 0, "2025-09-01")
	f.usage("n1", "storage", "", "100", 0, "2025-09-02")
	f.usage("n1", "pod", "", "100", 0, "2025-12-31 23:59:59")
	f.usage("n1", "pod", "", "100", 0, "2026-01-01 00:00:00")
	f.usage("n1", "serverless", "", "1000", 0, "2025-09-10")
	f.usage("old1", "pod", "", "100", 0, "2025-08-01")
	f.usage("edge", "pod", "", "10", 0, "2025-07-01") // 0.30
	// sv refers v1 before the change: $1,000 of serverless pays 500 + 500; sv2 refers v2 after it:
	// the bonus has ended.
	f.exec(`INSERT INTO referrals VALUES ('v1', 'sv', '2025-03-01'), ('v2', 'sv2', '2025-07-01')`)
	f.usage("v1", "serverless", "", "1000", 0, "2025-04-01")
	f.usage("v2", "serverless", "", "1000", 0, "2025-07-05")
	// A template: unchanged at 1% (18.14). old1's usage on it still counts: not being a new
	// account only concerns referrals.
	f.exec(`INSERT INTO templates VALUES ('tpl', 'maker', '2025-01-01')`)
	f.exec(`INSERT INTO users SELECT 't' || g, '2025-01-01' FROM generate_series(1, 20) g`)
	f.exec(`INSERT INTO usage_events (id, user_id, product, template_id, amount_usd, runtime_seconds, occurred_at)
		SELECT 1000 + g * 10 + d, 't' || g, 'pod', 'tpl', 0.54 * 24, 86400, timestamptz '2025-05-10' + d * interval '1 day'
		FROM generate_series(1, 20) g, generate_series(0, 6) d`)
	f.usage("old1", "pod", "tpl", "100", 3600, "2025-08-02") // 1.00 more
}

func TestRunPod2025Terms(t *testing.T) {
	f := newFixture(t)
	f.useTermsFile("../terms/runpod-2025.yaml")
	runpodHistory(f)
	f.run("2026-03-01")
	for _, c := range []struct {
		what                     string
		program                  reconcile.Program
		terms, beneficiary, want string
	}{
		{"beta referrals keep lifetime earnings at 2% of every product", reconcile.Referral, "seed", "beta", "13.00"},
		{"a referral after the change is a second account of the same referrer", reconcile.Referral, "runpod-2025-06", "beta", "1.50"},
		{"6-month window, pod 3%, serverless 5%, storage nothing, window end excluded; not_new_account earns nothing", reconcile.Referral, "runpod-2025-06", "new", "61.30"},
		{"serverless bonus before the change: referrer", reconcile.ServerlessReferral, "seed", "sv", "500.00"},
		{"serverless bonus before the change: referred user", reconcile.ServerlessReferral, "seed", "v1", "500.00"},
		{"no serverless bonus for a referral after the change", reconcile.ServerlessReferral, "ended-2025-06", "sv2", "0.00"},
		{"templates unchanged, a not-new account's usage still counts", reconcile.Template, "seed", "maker", "19.14"},
	} {
		if got := f.grantedIn(c.program, c.terms, c.beneficiary); got != c.want {
			t.Errorf("%s: %s/%s/%s granted %s, want %s", c.what, c.program, c.terms, c.beneficiary, got, c.want)
		}
	}
	for _, user := range []string{"new", "n1"} {
		if got := f.granted(reconcile.ServerlessReferral, user); got != "0.00" {
			t.Errorf("serverless bonus to %s for a referral after the change: %s", user, got)
		}
	}
	d := f.decision("2026-03-01", "new", reconcile.Referral, "runpod-2025-06")
	if !strings.Contains(d.Reason, "1 referral excluded: not_new_account") {
		t.Errorf("referrer new: reason %q, want it to name the not_new_account referral", d.Reason)
	}
	// The grants name their version and their keys say it; seed keys are unchanged.
	var keys []string
	if err := f.db.Select(&keys, `SELECT idempotency_key FROM credit_grants WHERE beneficiary_id = 'beta' ORDER BY idempotency_key`); err != nil {
		t.Fatal(err)
	}
	if want := []string{"referral:beta:0.00", "referral@runpod-2025-06:beta:0.00"}; strings.Join(keys, " ") != strings.Join(want, " ") {
		t.Errorf("beta's keys %v, want %v", keys, want)
	}
	x, err := f.r.Explain(context.Background(), "new", date("2026-03-01"))
	if err != nil {
		t.Fatal(err)
	}
	var ends []string
	for _, b := range x.Referrals {
		if b.WindowEnd != nil {
			ends = append(ends, b.ReferredUserID+" "+b.WindowEnd.Format(time.RFC3339))
		}
		if b.ReferredUserID == "old1" && b.NewAccount {
			t.Errorf("explain: old1 is a new account, want not")
		}
	}
	if want := "edge 2025-12-16T00:00:00Z n1 2026-01-01T00:00:00Z old1 2026-01-01T00:00:00Z"; strings.Join(ends, " ") != want {
		t.Errorf("explain window ends %q, want %q", strings.Join(ends, " "), want)
	}
	// Running again writes nothing, and the operators' audit passes on the versioned ledger.
	n := f.grantCount()
	f.run("2026-03-01")
	if f.grantCount() != n {
		t.Errorf("the same run again: %d grants, was %d", f.grantCount(), n)
	}
	if err := f.verify(jobs.VerifyOptions{}).Err(); err != nil {
		t.Errorf("verify: %v", err)
	}
}

// TestSeedFileIsTheBuiltInTerms runs the same history under the built-in terms and under
// terms/seed.yaml: the same grants, keys and reports.
func TestSeedFileIsTheBuiltInTerms(t *testing.T) {
	ledgers := map[string]string{}
	for _, file := range []string{"", "../terms/seed.yaml"} {
		f := newFixture(t)
		if file != "" {
			f.useTermsFile(file)
		}
		runpodHistory(f)
		for _, cutoff := range []string{"2025-06-01", "2025-09-01", "2026-03-01"} {
			f.run(cutoff)
		}
		var rows []string
		if err := f.db.Select(&rows, `SELECT idempotency_key || ' ' || terms_id || ' ' || amount_usd || ' ' || as_of::date
			FROM credit_grants ORDER BY id`); err != nil {
			t.Fatal(err)
		}
		ledgers[file] = strings.Join(rows, "\n")
	}
	if ledgers[""] != ledgers["../terms/seed.yaml"] || ledgers[""] == "" {
		t.Errorf("built-in terms granted\n%s\nterms/seed.yaml granted\n%s", ledgers[""], ledgers["../terms/seed.yaml"])
	}
}

func TestTwoVersionsUnderOneReferrer(t *testing.T) {
	f := newFixture(t)
	f.useTerms(`
programs:
  referral:
    - id: v1
      rates: [{products: {"*": "0.10"}}]
      window: lifetime
      min_referrals: 3
      min_spend_usd: "0"
      requires_acceptance: false
    - id: v2
      from: 2026-01-10
      rates: [{products: {"*": "0.20"}}]
      window: lifetime
      min_referrals: 2
      min_spend_usd: "0"
      requires_acceptance: false
`)
	// r has 2 referrals under v1 and 2 under v2: v1 needs 3 (accrued), v2 needs 2 (granted).
	f.referrals("r", "a", 2, "2026-01-02")
	f.referrals("r", "b", 2, "2026-01-12")
	for _, u := range []string{"a1", "a2", "b1", "b2"} {
		f.usage(u, "pod", "", "10", 0, "2026-01-15")
	}
	f.run("2026-02-01")
	if got := f.grantedIn(reconcile.Referral, "v1", "r"); got != "0.00" {
		t.Errorf("v1 with 2 of 3 referrals: granted %s, want 0.00", got)
	}
	if got := f.grantedIn(reconcile.Referral, "v2", "r"); got != "4.00" {
		t.Errorf("v2 with 2 of 2 referrals: granted %s, want 4.00", got)
	}
	if d := f.decision("2026-02-01", "r", reconcile.Referral, "v1"); d.Status != reconcile.StatusAccrued || !d.Earned.Equal(decimal.NewFromInt(2)) {
		t.Errorf("v1: %s, earned %s; want accrued, 2", d.Status, d.Earned)
	}
	// A third referral under v1 makes it eligible: its own chain starts at 0.
	f.referrals("r", "c", 1, "2026-01-03")
	f.run("2026-02-02")
	if got := f.grantedIn(reconcile.Referral, "v1", "r"); got != "2.00" {
		t.Errorf("v1 with 3 referrals: granted %s, want 2.00", got)
	}
}

func TestRatePeriodHoldingCapAndMinimumGrant(t *testing.T) {
	t.Run("rate period mid-history", func(t *testing.T) {
		f := newFixture(t)
		f.useTerms(`
programs:
  referral:
    - id: seed
      rates:
        - products: {"*": "0.02"}
        - from: 2026-01-15T12:00:00Z
          products: {"*": "0.05", storage: "0"}
      window: lifetime
      min_referrals: 0
      min_spend_usd: "0"
      requires_acceptance: false
`)
		f.referrals("r", "u", 1, "2026-01-01")
		f.usage("u1", "pod", "", "100", 0, "2026-01-15T11:59:59Z")     // 2.00
		f.usage("u1", "pod", "", "100", 0, "2026-01-15T12:00:00Z")     // 5.00
		f.usage("u1", "storage", "", "100", 0, "2026-01-10T00:00:00Z") // 2.00
		f.usage("u1", "storage", "", "100", 0, "2026-01-20T00:00:00Z") // 0, but counts as spend: rate 0 is a rate
		f.run("2026-02-01")
		if got := f.granted(reconcile.Referral, "r"); got != "9.00" {
			t.Errorf("granted %s, want 9.00", got)
		}
		if d := f.decision("2026-02-01", "r", reconcile.Referral, "seed"); !d.Spend.Equal(decimal.NewFromInt(400)) {
			t.Errorf("spend %s, want 400", d.Spend)
		}
	})
	t.Run("holding period", func(t *testing.T) {
		f := newFixture(t)
		f.useTerms(`
holding_days: 7
programs:
  referral:
    - id: seed
      rates: [{products: {"*": "0.10"}}]
      window: lifetime
      min_referrals: 0
      min_spend_usd: "0"
      requires_acceptance: false
`)
		f.referrals("r", "u", 1, "2026-01-01")
		f.usage("u1", "pod", "", "10", 0, "2026-01-20T00:00:00Z")
		f.run("2026-01-27")
		if got := f.granted(reconcile.Referral, "r"); got != "0.00" {
			t.Errorf("usage exactly 7 days old: granted %s, want 0.00 (held)", got)
		}
		if d := f.decision("2026-01-27", "r", reconcile.Referral, "seed"); !d.HeldEarned.Equal(decimal.NewFromInt(1)) || !d.HeldSpend.Equal(decimal.NewFromInt(10)) {
			t.Errorf("explain held %s spend, %s earned; want 10 and 1", d.HeldSpend, d.HeldEarned)
		}
		res, err := f.r.Run(context.Background(), jobs.RunOptions{AsOf: date("2026-01-27").Add(time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		if got := f.granted(reconcile.Referral, "r"); got != "1.00" || res.Plan.Summary.Grants != 1 {
			t.Errorf("a second later: granted %s, want 1.00", got)
		}
	})
	t.Run("cap", func(t *testing.T) {
		f := newFixture(t)
		f.useTerms(`
programs:
  template:
    - id: capped
      products: [pod]
      rates: [{rate: "0.10"}]
      min_runtime_seconds: 0
      cap_usd: "5.00"
`)
		f.users("maker", "u")
		f.exec(`INSERT INTO templates VALUES ('tpl', 'maker', '2026-01-01')`)
		f.usage("u", "pod", "tpl", "40", 10, "2026-01-05")
		f.run("2026-01-10")
		f.usage("u", "pod", "tpl", "40", 10, "2026-01-11")
		f.run("2026-01-20")
		if got := f.granted(reconcile.Template, "maker"); got != "5.00" {
			t.Errorf("granted %s, want the cap 5.00", got)
		}
		if d := f.decision("2026-01-20", "maker", reconcile.Template, "capped"); d.Status != reconcile.StatusCapped {
			t.Errorf("status %s, want capped", d.Status)
		}
	})
	t.Run("minimum grant", func(t *testing.T) {
		f := newFixture(t)
		f.useTerms(`
min_grant_usd: "1.00"
programs:
  referral:
    - id: seed
      rates: [{products: {"*": "0.10"}}]
      window: lifetime
      min_referrals: 0
      min_spend_usd: "0"
      requires_acceptance: false
`)
		f.referrals("r", "u", 1, "2026-01-01")
		f.usage("u1", "pod", "", "6", 0, "2026-01-05")
		f.run("2026-01-10")
		if got := f.granted(reconcile.Referral, "r"); got != "0.00" {
			t.Errorf("0.60 owed: granted %s, want 0.00 (under the minimum)", got)
		}
		if d := f.decision("2026-01-10", "r", reconcile.Referral, "seed"); !d.Waiting.Equal(decimal.RequireFromString("0.6")) {
			t.Errorf("waiting %s, want 0.60", d.Waiting)
		}
		f.usage("u1", "pod", "", "6", 0, "2026-01-11")
		f.run("2026-01-12")
		if got := f.granted(reconcile.Referral, "r"); got != "1.20" {
			t.Errorf("1.20 owed: granted %s, want 1.20", got)
		}
	})
}

// tableCounts counts the rows of every job-owned table.
func tableCounts(f *fixture) string {
	f.t.Helper()
	var out []string
	for _, table := range []string{"recon_runs", "credit_grants", "credit_accounts", "terms_versions", "run_terms", "run_rates",
		"run_referrals", "run_templates", "run_anomalies", "run_seen", "referral_acceptances"} {
		var n int
		if err := f.db.Get(&n, "SELECT count(*) FROM "+table); err != nil {
			f.t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s=%d", table, n))
	}
	return strings.Join(out, " ")
}

func TestTermsAreAppendOnly(t *testing.T) {
	const base = `
programs:
  referral:
    - id: seed
      rates:
        - products: {"*": "0.02"}
      window: lifetime
      min_referrals: 0
      min_spend_usd: "0"
      requires_acceptance: false
`
	const later = `
    - id: later
      from: %s
      rates: [{products: {"*": "0.05"}}]
      window: lifetime
      min_referrals: 0
      min_spend_usd: "0"
      requires_acceptance: false
`
	setup := func(t *testing.T) *fixture {
		f := newFixture(t)
		f.useTerms(base + fmt.Sprintf(later, "2026-03-01"))
		f.referrals("r", "u", 1, "2026-01-01")
		f.referrals("r", "w", 1, "2026-01-20")
		f.usage("u1", "pod", "", "100", 0, "2026-01-05")
		f.usage("w1", "pod", "", "100", 0, "2026-01-25")
		f.run("2026-02-01") // 4.00 under seed
		return f
	}
	refused := []struct {
		name, terms, want string
	}{
		{"changed version", strings.Replace(base, `"0.02"`, `"0.03"`, 1), "version referral/seed is in use (since run 1) and its rates changed"},
		{"dropped version", strings.Replace(base, "id: seed", "id: renamed", 1), "version referral/seed is in use (since run 1) and missing"},
		{"retroactive version", base + fmt.Sprintf(later, "2026-01-15"), "new version referral/later starts from 2026-01-15T00:00:00Z, before the latest cutoff"},
		{"retroactive rate period", strings.Replace(base, `        - products: {"*": "0.02"}`,
			"        - products: {\"*\": \"0.02\"}\n        - from: 2026-01-22\n          products: {\"*\": \"0.04\"}", 1), "gains a rate period from before the latest cutoff"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			f := setup(t)
			before := tableCounts(f)
			f.useTerms(tt.terms)
			_, err := f.r.Run(context.Background(), jobs.RunOptions{AsOf: date("2026-02-02")})
			var termsErr *jobs.TermsError
			if !errors.As(err, &termsErr) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run: %v, want a TermsError saying %q", err, tt.want)
			}
			if after := tableCounts(f); after != before {
				t.Errorf("a refused run wrote:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
	t.Run("editing a version not yet in force, and appending a rate period after the cutoff", func(t *testing.T) {
		f := setup(t)
		f.useTerms(strings.Replace(base, `        - products: {"*": "0.02"}`,
			"        - products: {\"*\": \"0.02\"}\n        - from: 2026-02-10\n          products: {\"*\": \"0.04\"}", 1) +
			fmt.Sprintf(later, "2026-03-05"))
		f.run("2026-02-02")
		f.usage("u1", "pod", "", "100", 0, "2026-02-11")
		f.run("2026-02-12")
		if got := f.granted(reconcile.Referral, "r"); got != "8.00" {
			t.Errorf("granted %s, want 8.00 (4%% from 2026-02-10)", got)
		}
	})
	t.Run("allow retroactive re-prices with the ordinary arithmetic", func(t *testing.T) {
		f := setup(t)
		f.useTerms(base + fmt.Sprintf(later, "2026-01-15"))
		res, err := f.r.Run(context.Background(), jobs.RunOptions{AsOf: date("2026-02-02"), AllowRetroactive: true})
		if err != nil {
			t.Fatal(err)
		}
		if res.Plan.Summary.Aggregates.Mode != "full" {
			t.Errorf("a retroactive run read %s, want full", res.Plan.Summary.Aggregates.Mode)
		}
		// w's referral moves to version later (5.00 owed, a new account); seed keeps u (2.00)
		// and reports 2.00 of clawback due: it granted 4.00.
		if got := f.grantedIn(reconcile.Referral, "later", "r"); got != "5.00" {
			t.Errorf("later: granted %s, want 5.00", got)
		}
		d := f.decision("2026-02-02", "r", reconcile.Referral, "seed")
		if !d.ClawbackDue.Equal(decimal.NewFromInt(2)) || d.Status != reconcile.StatusClawback {
			t.Errorf("seed: %s, clawback due %s; want clawback, 2.00", d.Status, d.ClawbackDue)
		}
		var allowed bool
		if err := f.db.Get(&allowed, `SELECT allow_retroactive FROM recon_runs WHERE id = $1`, res.RunID); err != nil || !allowed {
			t.Errorf("ledger allow_retroactive = %t (%v), want true", allowed, err)
		}
	})
}

func TestSimulateWritesNothingAndMatchesDryRuns(t *testing.T) {
	f := newFixture(t)
	runpodHistory(f)
	f.run("2025-09-01")
	f.run("2026-01-01")
	before := tableCounts(f)
	proposed, err := terms.Load("../terms/runpod-2025.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sim, err := f.r.Simulate(context.Background(), proposed, date("2026-03-01"))
	if err != nil {
		t.Fatal(err)
	}
	if after := tableCounts(f); after != before {
		t.Errorf("simulate wrote:\nbefore %s\nafter  %s", before, after)
	}
	// Each side equals a dry run under its terms.
	owed := func(file string) map[string]decimal.Decimal {
		g := newFixture(t) // the dry runs plan on the same data, in their own database
		runpodHistory(g)
		g.run("2025-09-01")
		g.run("2026-01-01")
		if file != "" {
			g.useTermsFile(file)
		}
		res, err := g.r.Run(context.Background(), jobs.RunOptions{AsOf: date("2026-03-01"), DryRun: true, AllowRetroactive: true})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]decimal.Decimal{}
		for _, gr := range res.Plan.Grants {
			k := string(gr.Program) + "/" + gr.TermsID
			m[k] = m[k].Add(gr.Amount)
		}
		return m
	}
	current, proposedOwed := owed(""), owed("../terms/runpod-2025.yaml")
	for _, v := range sim.Versions {
		k := string(v.Program) + "/" + v.TermsID
		if !v.Current.Owed.Equal(current[k]) || !v.Proposed.Owed.Equal(proposedOwed[k]) {
			t.Errorf("%s: simulate owes %s now, %s proposed; dry runs %s and %s", k, v.Current.Owed, v.Proposed.Owed, current[k], proposedOwed[k])
		}
	}
	if len(sim.Versions) < 4 || len(sim.Movers) == 0 || len(sim.Movers) > 10 {
		t.Errorf("simulate: %d versions, %d movers", len(sim.Versions), len(sim.Movers))
	}
	for i := 1; i < len(sim.Movers); i++ {
		if sim.Movers[i].Diff.Abs().GreaterThan(sim.Movers[i-1].Diff.Abs()) {
			t.Errorf("movers not in order of change: %v", sim.Movers)
		}
	}
}
