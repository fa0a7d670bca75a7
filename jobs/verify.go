package jobs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/runpod/creditrecon/reconcile"
	"github.com/runpod/creditrecon/reports"
)

// Auditor is the part of Store that Verify needs: the ledger's set-based checks
// and the listings the Go checks start from. The PostgreSQL store implements it.
type Auditor interface {
	// AuditLedger runs the set-based ledger checks on one consistent snapshot, in report order.
	AuditLedger(ctx context.Context) ([]Check, error)
	// GrantedAccounts streams every account that has grants, ordered by the cutoff and run of
	// its latest grant; only accounts whose latest grant is as of asOf when asOf is not zero.
	GrantedAccounts(ctx context.Context, asOf time.Time, fn func(GrantedAccount) error) error
	// CommittedCutoffs lists the cutoffs that have a run which committed its grants.
	CommittedCutoffs(ctx context.Context) ([]time.Time, error)
	// DrawnGrants streams the signup bonus grants whose amount was drawn, in id order.
	DrawnGrants(ctx context.Context, fn func(DrawnGrant) error) error
}

// Check is the outcome of one audit check.
type Check struct {
	Name     string   // short name, e.g. "chain"
	Title    string   // what holds when it passes
	Checked  int64    // rows (grants, runs, accounts, manifests) examined
	Failed   int64    // rows that break it
	Examples []string // the first failing rows, naming their ids
	Skipped  string   // why the check did not run; empty when it ran
}

// OK reports whether the check passed or was skipped.
func (c Check) OK() bool { return c.Failed == 0 }

// Status is PASS, FAIL or SKIP.
func (c Check) Status() string {
	switch {
	case c.Failed > 0:
		return "FAIL"
	case c.Skipped != "":
		return "SKIP"
	default:
		return "PASS"
	}
}

// GrantedAccount is an account that has grants: its total and its latest grant (by id).
type GrantedAccount struct {
	Program       string          `db:"program"`
	TermsID       string          `db:"terms_id"`
	AccountID     string          `db:"account_id"`
	Role          string          `db:"role"`
	BeneficiaryID string          `db:"beneficiary_id"`
	Granted       decimal.Decimal `db:"granted"`
	AsOf          time.Time       `db:"as_of"`  // the latest grant's cutoff
	RunID         int64           `db:"run_id"` // the run that wrote the latest grant
	// Parameters and Terms are the run's, set on the first account of each run only.
	Parameters []byte `db:"parameters"`
	Terms      []byte `db:"terms"`
}

func (a GrantedAccount) key() string {
	return accountKey(reconcile.Program(a.Program), a.TermsID, a.AccountID, a.Role)
}

// accountKey names an account as idempotency keys do, without the amount:
// program[@version]:account[/role].
func accountKey(p reconcile.Program, termsID, accountID, role string) string {
	if termsID != reconcile.SeedTermsID {
		p += reconcile.Program("@" + termsID)
	}
	k := string(p) + ":" + url.QueryEscape(accountID)
	if role != "" {
		k += "/" + role
	}
	return k
}

// VerifyOptions select what Verify audits.
type VerifyOptions struct {
	// AsOf, when set, limits the checks that re-read usage and reports to one cutoff: the
	// accounts whose latest grant is as of it, and its manifest. The ledger checks always cover
	// every grant and run.
	AsOf time.Time
}

// VerifyReport is the outcome of every check, in report order.
type VerifyReport struct {
	Checks []Check
}

// Err returns nil when every check passed, or a *VerifyError naming the failing checks.
func (v VerifyReport) Err() error {
	var failed []Check
	for _, c := range v.Checks {
		if !c.OK() {
			failed = append(failed, c)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return &VerifyError{Failed: failed}
}

// VerifyError is an audit that found violations.
type VerifyError struct {
	Failed []Check
}

// Error names each failing check, how many rows break it, and the first of them.
func (e *VerifyError) Error() string {
	parts := make([]string, 0, len(e.Failed))
	for _, c := range e.Failed {
		s := fmt.Sprintf("%s: %d failing", c.Name, c.Failed)
		if len(c.Examples) > 0 {
			s += ", first: " + c.Examples[0]
		}
		parts = append(parts, s)
	}
	return "failed checks: " + strings.Join(parts, "; ")
}

// maxExamples is how many failing rows a check names.
const maxExamples = 5

// Verify audits the database at any time, without the run lock and without writing anything that
// stays (the re-evaluation's scratch aggregates are rolled back):
// the ledger checks of the store (unique keys, consistent account chains, positive whole-cent
// grants, grants belonging to committed runs whose counts add up, serverless bonuses at most once,
// no run left running without the lock), then two checks that re-read the usage and the reports:
//
//   - owed: every account's total granted is at most the target the rules give at the cutoff of
//     its latest grant, re-evaluated now with the parameters of the run that wrote it. Late usage
//     rows and acceptances only raise targets, so a failure is an over-grant, or usage before
//     that cutoff that changed afterwards (a late refund; see `creditrecon explain`).
//   - manifests: when r.Sink is set, each cutoff's manifest.json, if present, still ties out to
//     the ledger: the granted control totals and the grants row count.
//
// The ledger checks read one snapshot, but the lock table is live: a run that ends while Verify
// reads can show as running without its lock, so verify again before acting on that check alone.
// A failing check is not an error: see VerifyReport.Err.
// Errors are the database's or the sink's.
func (r *Runner) Verify(ctx context.Context, opts VerifyOptions) (VerifyReport, error) {
	var rep VerifyReport
	a := r.Store
	checks, err := a.AuditLedger(ctx)
	if err != nil {
		return rep, err
	}
	rep.Checks = checks
	owed, err := r.verifyOwed(ctx, a, opts.AsOf)
	if err != nil {
		return rep, err
	}
	rep.Checks = append(rep.Checks, owed)
	draws, err := r.verifyDraws(ctx, a)
	if err != nil {
		return rep, err
	}
	rep.Checks = append(rep.Checks, draws)
	manifests, err := r.verifyManifests(ctx, a, opts.AsOf)
	if err != nil {
		return rep, err
	}
	rep.Checks = append(rep.Checks, manifests)
	return rep, nil
}

func (c *Check) fail(format string, args ...any) {
	c.Failed++
	if len(c.Examples) < maxExamples {
		c.Examples = append(c.Examples, fmt.Sprintf(format, args...))
	}
}

// owedGroup is the accounts whose latest grant is at one cutoff under one set of parameters:
// one evaluation checks them all.
type owedGroup struct {
	asOf     time.Time
	terms    reconcile.Terms
	accounts map[string]GrantedAccount
}

// verifyOwed re-evaluates, for each distinct (cutoff, parameters) of the accounts' latest grants,
// every program from the aggregates the latest run of that cutoff recorded (or, when none did,
// from a fresh aggregation), and compares each account's total granted with its target.
func (r *Runner) verifyOwed(ctx context.Context, a Auditor, asOf time.Time) (Check, error) {
	c := Check{Name: "owed", Title: "grants never exceed the target at their latest cutoff"}
	groups := map[string]*owedGroup{}
	var order []string
	var group *owedGroup
	runID := int64(0)
	err := a.GrantedAccounts(ctx, asOf, func(acct GrantedAccount) error {
		c.Checked++
		if acct.RunID != runID || group == nil {
			runID = acct.RunID
			terms, canonical, err := termsOfRun(r.Config.Params, acct.Parameters, acct.Terms)
			if err != nil {
				return fmt.Errorf("terms of run %d: %w", acct.RunID, err)
			}
			k := acct.AsOf.Format(time.RFC3339Nano) + " " + string(canonical)
			if group = groups[k]; group == nil {
				group = &owedGroup{asOf: acct.AsOf, terms: terms, accounts: map[string]GrantedAccount{}}
				groups[k] = group
				order = append(order, k)
			}
		}
		group.accounts[acct.key()] = acct
		return nil
	})
	if err != nil {
		return c, fmt.Errorf("verify owed: %w", err)
	}
	for _, k := range order {
		if err := r.verifyGroup(ctx, groups[k], &c); err != nil {
			return c, err
		}
	}
	return c, nil
}

func (r *Runner) verifyGroup(ctx context.Context, g *owedGroup, c *Check) error {
	seen := map[string]bool{}
	err := r.Store.Snapshot(ctx, func(s Snapshot) error {
		q := Query{AsOf: g.asOf}
		set, err := s.ReportRuns(ctx, g.asOf)
		var incomplete *ShardsIncompleteError
		if err != nil && !errors.As(err, &incomplete) {
			return err
		}
		if set != nil {
			q.Runs = set.IDs()
		} else {
			in := r.aggregateInput(g.asOf, r.Now(), Shard{})
			in.Terms = g.terms
			if _, err := s.Aggregate(ctx, 0, in, nil); err != nil {
				return err
			}
		}
		return evaluate(ctx, s, g.terms, r.Config.DrawSecret, q, false, func(d reconcile.Decision, _ int64) error {
			k := accountKey(d.Program, d.TermsID, d.AccountID, d.Role)
			acct, ok := g.accounts[k]
			if !ok {
				return nil
			}
			seen[k] = true
			if acct.Granted.GreaterThan(d.Target) {
				c.fail("%s: granted %s > target %s as of %s (run %d's terms; %s)", k,
					acct.Granted.StringFixed(2), d.Target.StringFixed(2), g.asOf.Format(time.RFC3339), acct.RunID, d.Status)
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("verify owed as_of=%s: %w", g.asOf.Format(time.RFC3339), err)
	}
	// Accounts the evaluation no longer produces (their referral or template row is gone) cannot
	// be shown to be owed anything.
	missing := make([]string, 0)
	for k := range g.accounts {
		if !seen[k] {
			missing = append(missing, k)
		}
	}
	slices.Sort(missing)
	for _, k := range missing {
		acct := g.accounts[k]
		c.fail("%s: granted %s but no longer evaluated as of %s (source row removed?)", k,
			acct.Granted.StringFixed(2), g.asOf.Format(time.RFC3339))
	}
	return nil
}

// verifyManifests reads the manifest of each committed cutoff's business date and compares its
// granted control totals and grants row count with the ledger now.
func (r *Runner) verifyManifests(ctx context.Context, a Auditor, asOf time.Time) (Check, error) {
	c := Check{Name: "manifests", Title: "report manifests tie out to the ledger"}
	if r.Sink == nil {
		c.Skipped = "no reports sink configured"
		return c, nil
	}
	cutoffs, err := a.CommittedCutoffs(ctx)
	if err != nil {
		return c, err
	}
	byDate := map[string][]time.Time{}
	var dates []string
	for _, t := range cutoffs {
		if !asOf.IsZero() && !t.Equal(asOf) {
			continue
		}
		d := BusinessDate(t, r.Config.Location)
		if byDate[d] == nil {
			dates = append(dates, d)
		}
		byDate[d] = append(byDate[d], t)
	}
	absent := 0
	for _, date := range dates {
		man, err := reports.ReadManifest(ctx, r.Sink, date)
		if errors.Is(err, fs.ErrNotExist) {
			absent++
			continue
		}
		c.Checked++
		if err != nil {
			c.fail("dt=%s: manifest unreadable: %v", date, err)
			continue
		}
		if !slices.ContainsFunc(byDate[date], man.AsOf.Equal) {
			c.fail("dt=%s: manifest is as of %s, which has no committed run", date, man.AsOf.Format(time.RFC3339))
			continue
		}
		if err := r.tieOut(ctx, man, &c); err != nil {
			return c, err
		}
	}
	if c.Checked == 0 && absent > 0 {
		c.Skipped = fmt.Sprintf("no manifest found for %d cutoffs", absent)
	}
	return c, nil
}

// tieOut compares one manifest with the ledger. Grants are append-only, so a manifest showing
// less than the ledger is stale (grants as of its cutoff were written after it was exported); one
// showing more was altered or belongs to another database.
func (r *Runner) tieOut(ctx context.Context, man reports.Manifest, c *Check) error {
	var totals map[reconcile.Program]GrantTotal
	err := r.Store.Snapshot(ctx, func(s Snapshot) (err error) {
		totals, err = s.GrantTotals(ctx, man.AsOf)
		return err
	})
	if err != nil {
		return fmt.Errorf("verify manifest dt=%s: %w", man.BusinessDate, err)
	}
	var diffs []string
	stale := true
	compare := func(what string, manifest, ledger decimal.Decimal) {
		if manifest.Equal(ledger) {
			return
		}
		diffs = append(diffs, fmt.Sprintf("%s %s, ledger %s", what, manifest, ledger))
		stale = stale && manifest.LessThan(ledger)
	}
	var rows int64
	for _, p := range reconcile.Programs {
		mt, lt := man.ControlTotals[string(p)], totals[p]
		compare(string(p)+" granted_as_of_usd", mt.GrantedAsOfUSD, lt.GrantedAsOf)
		compare(string(p)+" granted_to_date_usd", mt.GrantedToDateUSD, lt.GrantedToDate)
		rows += lt.GrantsAsOf
	}
	for _, f := range man.Files {
		if strings.HasSuffix(f.Key, "/grants.csv") {
			compare("grants.csv rows", decimal.NewFromInt(f.Rows), decimal.NewFromInt(rows))
		}
	}
	if len(diffs) == 0 {
		return nil
	}
	if stale {
		c.fail("dt=%s: stale, re-export (creditrecon export --as-of %s): %s", man.BusinessDate,
			man.AsOf.Format(time.RFC3339), strings.Join(diffs, "; "))
	} else {
		c.fail("dt=%s: does not tie out (altered, or from another database): %s", man.BusinessDate, strings.Join(diffs, "; "))
	}
	return nil
}
