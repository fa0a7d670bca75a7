package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/runpod/creditrecon/reconcile"
	"github.com/runpod/creditrecon/reports"
)

// Config is what a run needs besides its cutoff. Validate it before opening the database.
type Config struct {
	// Params are the program flags: the built-in terms when Terms has no file.
	Params reconcile.Params
	// Terms are the terms of a terms file (SPEC 7); without a file, Params' built-in terms apply.
	Terms TermsSource
	// DrawSecret keys the signup bonus draws (SPEC 8.1): CREDITRECON_DRAW_SECRET, at least
	// reconcile.MinDrawSecret bytes when the terms draw. Never printed or stored: runs record its
	// SHA-256.
	DrawSecret []byte
	// MaxAnomalyShare fails a run whose anomalies exceed this share of the rows considered.
	MaxAnomalyShare float64
	// ClockSkew is how far in the future of the run's wall clock an occurred_at may be.
	ClockSkew time.Duration
	// MaxEventAmount is the largest believable |amount_usd| of one usage row.
	MaxEventAmount decimal.Decimal
	// Location is the zone of DATE cutoffs and business dates.
	Location *time.Location
	// Version of the binary, recorded with every run.
	Version string
	// IncrementalMaxAge is the oldest a base run may be for a run to extend its aggregates
	// instead of reading the whole history; 0 makes every run full.
	IncrementalMaxAge time.Duration
	// LateMargin: see AggregateInput.
	LateMargin time.Duration
}

// DefaultConfig returns the seed's parameters and the documented defaults.
func DefaultConfig() Config {
	return Config{
		Params:          reconcile.DefaultParams(),
		MaxAnomalyShare: 0.01,
		ClockSkew:       10 * time.Minute,
		MaxEventAmount:  decimal.NewFromInt(100000),
		Location:        time.UTC,

		IncrementalMaxAge: 7 * 24 * time.Hour,
		LateMargin:        24 * time.Hour,
	}
}

// drawSecretSHA256 is what a run records of the draw secret: its SHA-256, or "" without one.
func (c Config) drawSecretSHA256() string {
	if len(c.DrawSecret) == 0 {
		return ""
	}
	sum := sha256.Sum256(c.DrawSecret)
	return hex.EncodeToString(sum[:])
}

// terms returns the terms runs use: the terms file's, or the built-in terms of the flags.
func (c Config) terms() reconcile.Terms {
	if c.Terms.File != "" {
		return c.Terms.Terms
	}
	return c.Params.Terms()
}

// TermsRecord returns what a run records of its terms (a TermsRecord as JSON).
func (c Config) TermsRecord() (json.RawMessage, error) {
	b, err := json.Marshal(record(c.Terms, c.terms()))
	if err != nil {
		return nil, fmt.Errorf("encode terms: %w", err)
	}
	return b, nil
}

// Validate reports every bad setting by the name of its flag.
func (c Config) Validate() error {
	errs := []error{c.Params.Validate()}
	for _, v := range c.terms().Signup {
		if v.Draws() && len(c.DrawSecret) < reconcile.MinDrawSecret {
			what := "not set"
			if len(c.DrawSecret) > 0 {
				what = fmt.Sprintf("%d bytes", len(c.DrawSecret))
			}
			errs = append(errs, fmt.Errorf("CREDITRECON_DRAW_SECRET: %s; signup bonus version %s draws amounts, which needs a secret of at least %d bytes (a Kubernetes Secret)",
				what, v.ID, reconcile.MinDrawSecret))
			break
		}
	}
	if !(c.MaxAnomalyShare >= 0 && c.MaxAnomalyShare <= 1) {
		errs = append(errs, fmt.Errorf("max-anomaly-share: must be between 0 and 1, got %v", c.MaxAnomalyShare))
	}
	if c.ClockSkew < 0 {
		errs = append(errs, fmt.Errorf("clock-skew: must not be negative, got %s", c.ClockSkew))
	}
	if !c.MaxEventAmount.IsPositive() {
		errs = append(errs, fmt.Errorf("max-event-amount: must be positive, got %s", c.MaxEventAmount))
	}
	if c.IncrementalMaxAge < 0 {
		errs = append(errs, fmt.Errorf("incremental-max-age: must not be negative, got %s", c.IncrementalMaxAge))
	}
	if c.LateMargin < time.Minute {
		errs = append(errs, fmt.Errorf("late-margin: must be at least 1m, got %s", c.LateMargin))
	}
	if c.Location == nil {
		errs = append(errs, errors.New("timezone: not set"))
	}
	return errors.Join(errs...)
}

// AnomalyLimitError fails a run whose input has too many anomalies; no grant is written.
type AnomalyLimitError struct {
	Anomalies, Considered int64
	MaxShare              float64
}

func (e *AnomalyLimitError) Error() string {
	return fmt.Sprintf("%d of %d usage rows are anomalies (%.4f%%), more than max-anomaly-share %.4f%%: no grant written; "+
		"see the anomalies with `creditrecon run --dry-run`, fix the source rows or raise the limit",
		e.Anomalies, e.Considered, 100*float64(e.Anomalies)/float64(e.Considered), 100*e.MaxShare)
}

// ProgramSummary adds up one program's accounts as of a cutoff.
type ProgramSummary struct {
	Accounts    int64           `json:"accounts"`
	Eligible    int64           `json:"eligible"`
	UsageRows   int64           `json:"usage_rows"`
	Spend       decimal.Decimal `json:"usage_considered_usd"`
	Earned      decimal.Decimal `json:"earned_usd"`
	Target      decimal.Decimal `json:"target_usd"`
	Grants      int64           `json:"grants"`
	Amount      decimal.Decimal `json:"granted_usd"`
	ClawbackDue decimal.Decimal `json:"clawback_due_usd"`
	// Cash is the part of Amount paid in cash (SPEC 8.2); the rest is credits.
	Cash decimal.Decimal `json:"cash_usd"`
}

// Summary adds up a run.
type Summary struct {
	AsOf       time.Time
	Shard      Shard      // the accounts planned (zero: all)
	Aggregates Aggregates // how the usage was read
	UsageRows  int64      // rows considered
	Anomalies  int64
	Grants     int64
	Amount     decimal.Decimal
	Cash       decimal.Decimal // the part of Amount paid in cash
	Programs   map[reconcile.Program]*ProgramSummary

	// Phases of a run, for the summary log line and the benchmarks.
	AggregateTime, EvaluateTime, WriteTime, ExportTime time.Duration
	ReportRows                                         int64
}

func newSummary(asOf time.Time) Summary {
	s := Summary{AsOf: asOf, Programs: map[reconcile.Program]*ProgramSummary{}}
	for _, p := range reconcile.Programs {
		s.Programs[p] = &ProgramSummary{}
	}
	return s
}

// add counts a decision; usage rows and spend are counted once per account (serverless
// decisions come in pairs over the same referral, so only the referrer's role counts them).
func (s *Summary) add(d reconcile.Decision, usageRows int64) {
	p := s.Programs[d.Program]
	if d.Role != reconcile.RoleReferred {
		p.Accounts++
		p.UsageRows += usageRows
		p.Spend = p.Spend.Add(d.Spend)
	}
	if d.Eligible {
		p.Eligible++
	}
	p.Earned = p.Earned.Add(d.Earned)
	p.Target = p.Target.Add(d.Target)
	p.ClawbackDue = p.ClawbackDue.Add(d.ClawbackDue)
	if d.Owed.IsPositive() {
		p.Grants++
		p.Amount = p.Amount.Add(d.Owed)
		s.Grants++
		s.Amount = s.Amount.Add(d.Owed)
		if d.Payout == reconcile.PayoutCash {
			p.Cash = p.Cash.Add(d.Owed)
			s.Cash = s.Cash.Add(d.Owed)
		}
	}
}

// Plan is what a run decided: the grants to write and the totals. A dry run's plan holds every
// grant; a real run writes its grants while it plans, in batches of grantBatch, and its plan
// holds none (Summary counts them).
type Plan struct {
	Grants  []reconcile.Grant
	Summary Summary
}

// Runner runs reconciliations. Now is the wall clock (injected for tests).
type Runner struct {
	Store    Store
	Config   Config
	Sink     reports.Sink // where reports go; nil: runs export no reports
	Observer Observer     // nil: nobody is told
	Log      *slog.Logger
	Now      func() time.Time
}

// Observer is told how every run (not dry runs) ended, e.g. to push metrics.
type Observer interface {
	RunFinished(ctx context.Context, r RunReport)
}

// RunReport is how a run ended: Err is nil on success.
type RunReport struct {
	RunID    int64
	Kind     string
	Shard    Shard // zero: unsharded
	AsOf     time.Time
	Summary  Summary
	Duration time.Duration
	Err      error
	// MaxAnomalyShare is the limit the run applied (Config.MaxAnomalyShare), so that a watcher
	// can tell how close the anomalies came to failing it.
	MaxAnomalyShare float64
}

// RunOptions select what a run does.
type RunOptions struct {
	AsOf   time.Time
	DryRun bool   // plan only: take no lock, write nothing
	Full   bool   // read the whole usage history, even when a base run could be extended
	Kind   string // "run" (default) or "backfill"
	Shard  Shard  // only this shard's accounts (zero: all)
	// AllowRetroactive accepts terms that re-price usage runs have counted (SPEC 7.3): a new
	// version or rate period from before the latest successful cutoff. The run reads the whole
	// history, and the ledger records that it was allowed.
	AllowRetroactive bool
}

// Result is what a run did.
type Result struct {
	RunID int64 // 0 for a dry run
	Plan  Plan
}

// Run reconciles as of opts.AsOf: it takes the run lock (ErrLocked if held), records the run,
// reads one snapshot, plans, writes the grants atomically, then exports the reports. A dry run
// only plans. A failure after the grants committed (the export) leaves the grants and returns an
// error; the next run or `creditrecon export` writes the reports.
func (r *Runner) Run(ctx context.Context, opts RunOptions) (*Result, error) {
	now := r.Now()
	if err := opts.Shard.Validate(); err != nil {
		return nil, err
	}
	if opts.AsOf.After(now) {
		return nil, fmt.Errorf("as-of %s is in the future (now %s): a cutoff must have passed", opts.AsOf.Format(time.RFC3339), now.Format(time.RFC3339))
	}
	if retroactive, err := r.checkTerms(ctx, opts); err != nil {
		return nil, err
	} else if retroactive {
		opts.Full = true
	}
	if opts.DryRun {
		var plan Plan
		base, err := r.base(ctx, opts, now)
		if err != nil {
			return nil, err
		}
		err = r.Store.Snapshot(ctx, func(s Snapshot) (err error) {
			plan, err = r.plan(ctx, s, 0, opts, now, base, nil)
			return err
		})
		return &Result{Plan: plan}, err
	}
	sess, err := r.Store.Lock(ctx, opts.Shard)
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	if n, err := sess.AbandonRunning(ctx); err != nil {
		return nil, err
	} else if n > 0 {
		r.Log.Warn("marked runs abandoned: their runner stopped without finishing", "runs", n)
	}
	params, err := json.Marshal(r.Config.Params)
	if err != nil {
		return nil, fmt.Errorf("encode parameters: %w", err)
	}
	terms, err := r.Config.TermsRecord()
	if err != nil {
		return nil, err
	}
	kind := opts.Kind
	if kind == "" {
		kind = "run"
	}
	record := RunRecord{Kind: kind, AsOf: opts.AsOf, StartedAt: now, Version: r.Config.Version, Parameters: params,
		Terms: terms, AllowRetroactive: opts.AllowRetroactive, DrawSecretSHA256: r.Config.drawSecretSHA256()}
	if opts.Shard.Sharded() {
		record.ShardIndex, record.ShardCount = &opts.Shard.Index, &opts.Shard.Count
	}
	runID, err := sess.StartRun(ctx, record)
	if err != nil {
		return nil, err
	}
	record.ID = runID
	started := time.Now()
	res, err := r.run(ctx, sess, &record, opts)
	status, errText := StatusSucceeded, ""
	if err != nil {
		status, errText = StatusFailed, err.Error()
	}
	if ferr := sess.FinishRun(ctx, runID, status, errText); ferr != nil {
		err = errors.Join(err, ferr)
	}
	d := time.Since(started)
	if err == nil {
		r.logSummary(res, d)
	}
	if r.Observer != nil {
		r.Observer.RunFinished(context.WithoutCancel(ctx), RunReport{RunID: runID, Kind: kind, Shard: opts.Shard, AsOf: opts.AsOf,
			Summary: res.Plan.Summary, Duration: d, Err: err, MaxAnomalyShare: r.Config.MaxAnomalyShare})
	}
	return res, err
}

// logSummary logs the one summary line of a run: cutoff, grants and amount per program,
// anomalies, duration.
func (r *Runner) logSummary(res *Result, d time.Duration) {
	s := res.Plan.Summary
	attrs := []any{"run_id", res.RunID, "as_of", s.AsOf, "shard", s.Shard.String(), "mode", s.Aggregates.Mode, "base_run_id", s.Aggregates.BaseRunID,
		"delta_rows", s.Aggregates.DeltaRows, "usage_rows", s.UsageRows, "anomalies", s.Anomalies,
		"grants", s.Grants, "amount_usd", s.Amount.StringFixed(2), "credits_usd", s.Amount.Sub(s.Cash).StringFixed(2),
		"cash_usd", s.Cash.StringFixed(2), "duration_ms", d.Milliseconds(),
		"aggregate_ms", s.AggregateTime.Milliseconds(), "evaluate_ms", s.EvaluateTime.Milliseconds(),
		"write_ms", s.WriteTime.Milliseconds(), "export_ms", s.ExportTime.Milliseconds(), "report_rows", s.ReportRows}
	for _, p := range reconcile.Programs {
		ps := s.Programs[p]
		attrs = append(attrs, slog.Group(string(p), "grants", ps.Grants, "amount_usd", ps.Amount.StringFixed(2), "cash_usd", ps.Cash.StringFixed(2),
			"eligible", ps.Eligible, "accounts", ps.Accounts, "clawback_due_usd", ps.ClawbackDue.StringFixed(2)))
	}
	r.Log.Info("run summary", attrs...)
}

func (r *Runner) run(ctx context.Context, sess Session, run *RunRecord, opts RunOptions) (*Result, error) {
	runID, asOf := run.ID, run.AsOf
	res := &Result{RunID: runID}
	base, err := r.base(ctx, opts, run.StartedAt)
	if err != nil {
		return res, err
	}
	err = sess.Transact(ctx, func(s Snapshot) (err error) {
		var wrote time.Duration // writing grants, while planning and after
		write := func(grants []reconcile.Grant) error {
			defer func(began time.Time) { wrote += time.Since(began) }(time.Now())
			return s.InsertGrants(ctx, runID, asOf, grants)
		}
		if res.Plan, err = r.plan(ctx, s, runID, opts, run.StartedAt, base, write); err != nil {
			return err
		}
		res.Plan.Summary.EvaluateTime -= wrote
		defer func(began time.Time) { res.Plan.Summary.WriteTime = wrote + time.Since(began) }(time.Now())
		if err := s.RecordTerms(ctx, runID, asOf, r.Config.terms().Records()); err != nil {
			return err
		}
		err = s.WriteGrants(ctx, runID, asOf, res.Plan.Grants, res.Plan.Summary)
		res.Plan.Grants = nil
		return err
	})
	if err != nil {
		return res, err
	}
	r.Log.Info("grants committed", "run_id", runID, "as_of", asOf, "grants", res.Plan.Summary.Grants,
		"amount_usd", res.Plan.Summary.Amount.StringFixed(2))
	if r.Sink != nil {
		began := time.Now()
		man, err := r.export(ctx, sess, asOf)
		var incomplete *ShardsIncompleteError
		if opts.Shard.Sharded() && errors.As(err, &incomplete) {
			// The last shard to commit writes the reports of the night.
			r.Log.Info("reports wait for the other shards", "run_id", runID, "shard", opts.Shard.String(), "missing", incomplete.Missing)
			return res, nil
		}
		if err != nil {
			return res, fmt.Errorf("grants are committed, but the reports failed (run `creditrecon export --as-of %s` when the cause is fixed): %w",
				asOf.Format(time.RFC3339), err)
		}
		res.Plan.Summary.ExportTime = time.Since(began)
		for _, f := range man.Files {
			res.Plan.Summary.ReportRows += f.Rows
		}
	}
	return res, nil
}

// base returns the run whose aggregates a run at wall clock now can extend, or nil for a full
// run: when asked, when incremental runs are off, or when no recent run with the same aggregate
// input exists.
func (r *Runner) base(ctx context.Context, opts RunOptions, now time.Time) (*BaseRun, error) {
	if opts.Full || r.Config.IncrementalMaxAge == 0 {
		return nil, nil
	}
	b, err := r.Store.BaseRun(ctx, opts.AsOf, opts.Shard)
	if err != nil || b == nil {
		return nil, err
	}
	if now.Sub(b.StartedAt) > r.Config.IncrementalMaxAge {
		return nil, nil
	}
	key, err := json.Marshal(r.aggregateInput(opts.AsOf, now, opts.Shard).Key())
	if err != nil {
		return nil, fmt.Errorf("encode aggregate input: %w", err)
	}
	var a, b2 any
	if json.Unmarshal(key, &a) != nil || json.Unmarshal(b.AggregateInput, &b2) != nil || !reflect.DeepEqual(a, b2) {
		return nil, nil
	}
	return b, nil
}

// grantBatch is how many grants a run holds before it writes them.
var grantBatch = 10000

// plan aggregates a snapshot's usage for a run (run 0: a dry run), extending base's aggregates
// when base is set, and decides the grants of every program's accounts (of opts.Shard) as of
// opts.AsOf. With write set it hands write the grants in batches of grantBatch as it decides
// them, so that memory stays flat however many are owed, and the plan keeps the last, partial
// batch; without, the plan keeps them all.
func (r *Runner) plan(ctx context.Context, s Snapshot, runID int64, opts RunOptions, now time.Time, base *BaseRun,
	write func([]reconcile.Grant) error) (Plan, error) {
	asOf := opts.AsOf
	plan := Plan{Summary: newSummary(asOf)}
	plan.Summary.Shard = opts.Shard
	began := time.Now()
	agg, err := s.Aggregate(ctx, runID, r.aggregateInput(asOf, now, opts.Shard), base)
	if err != nil {
		return plan, err
	}
	plan.Summary.AggregateTime = time.Since(began)
	plan.Summary.Aggregates = agg
	considered, anomalies := agg.Considered, agg.Anomalies
	plan.Summary.UsageRows, plan.Summary.Anomalies = considered, anomalies
	if agg.FullBecause != "" {
		r.Log.Info("full run: the base run cannot be extended", "reason", agg.FullBecause)
	}
	if considered > 0 && float64(anomalies)/float64(considered) > r.Config.MaxAnomalyShare {
		return plan, &AnomalyLimitError{Anomalies: anomalies, Considered: considered, MaxShare: r.Config.MaxAnomalyShare}
	}
	decide := func(d reconcile.Decision, usageRows int64) error {
		plan.Summary.add(d, usageRows)
		if g, ok := d.Grant(asOf); ok {
			plan.Grants = append(plan.Grants, g)
		}
		if write == nil || len(plan.Grants) < grantBatch {
			return nil
		}
		err := write(plan.Grants)
		plan.Grants = plan.Grants[:0]
		return err
	}
	began = time.Now()
	err = r.Evaluate(ctx, s, Query{RunID: runID, AsOf: asOf, Shard: opts.Shard}, false, decide)
	plan.Summary.EvaluateTime = time.Since(began)
	return plan, err
}

// aggregateInput is what a run of shard at wall clock now aggregates as of asOf.
func (r *Runner) aggregateInput(asOf, now time.Time, shard Shard) AggregateInput {
	return AggregateInput{AsOf: asOf, Terms: r.Config.terms(), Latest: now.Add(r.Config.ClockSkew), MaxAmount: r.Config.MaxEventAmount,
		LateMargin: r.Config.LateMargin, Shard: shard}
}

// checkTerms refuses terms that would rewrite the past (SPEC 7.3), and says whether they are
// retroactive (allowed by opts.AllowRetroactive; such a run reads the whole history).
func (r *Runner) checkTerms(ctx context.Context, opts RunOptions) (bool, error) {
	if len(r.Config.terms().Signup) > 0 {
		missing, err := r.Store.MissingSources(ctx)
		if err != nil {
			return false, err
		}
		if len(missing) > 0 {
			return false, fmt.Errorf("%w: the terms have a signup bonus, which reads %s; this database has no %s",
				ErrMissingSource, "credit_loads and users.country", strings.Join(missing, " and "))
		}
	}
	recorded, latest, err := r.Store.TermsInUse(ctx)
	if err != nil {
		return false, err
	}
	return checkAppendOnly(recorded, latest, r.Config.terms(), r.Config.Terms.File == "", opts.AllowRetroactive)
}

// Evaluate streams every program's accounts of run q.RunID and calls fn with each decision and
// the usage rows behind it. With asOfView the decisions count only grants with as_of <= q.AsOf,
// as the reports of that cutoff do; otherwise they count every grant, as a run must.
func (r *Runner) Evaluate(ctx context.Context, s Snapshot, q Query, asOfView bool, fn func(reconcile.Decision, int64) error) error {
	return evaluate(ctx, s, r.Config.terms(), r.Config.DrawSecret, q, asOfView, fn)
}

// evaluate is Evaluate under terms p, drawing signup bonuses with secret.
func evaluate(ctx context.Context, s Snapshot, p reconcile.Terms, secret []byte, q Query, asOfView bool, fn func(reconcile.Decision, int64) error) error {
	if err := s.Referrers(ctx, q, func(t reconcile.ReferrerTotals) error {
		if asOfView {
			t.Granted = t.GrantedAsOf
		}
		return fn(p.EvaluateReferrer(t), t.UsageRows)
	}); err != nil {
		return err
	}
	if err := s.Templates(ctx, q, func(t reconcile.TemplateTotals) error {
		if asOfView {
			t.Granted = t.GrantedAsOf
		}
		return fn(p.EvaluateTemplate(t), t.UsageRows)
	}); err != nil {
		return err
	}
	if err := s.Serverless(ctx, q, func(t reconcile.ServerlessTotals) error {
		if asOfView {
			t.GrantedReferrer, t.GrantedReferred = t.GrantedReferrerAsOf, t.GrantedReferredAsOf
		}
		for _, d := range p.EvaluateServerless(t) {
			if err := fn(d, t.UsageRows); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	if len(p.Signup) == 0 {
		return nil
	}
	return s.Signups(ctx, q, func(t reconcile.SignupTotals) error {
		if asOfView {
			t.GrantedReferrer, t.GrantedReferred = t.GrantedReferrerAsOf, t.GrantedReferredAsOf
		}
		ds, err := p.EvaluateSignup(t, secret)
		if err != nil {
			return err
		}
		for _, d := range ds {
			if err := fn(d, 0); err != nil {
				return err
			}
		}
		return nil
	})
}
