package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/shopspring/decimal"
)

// BackfillOptions select a backfill: one run per daily cutoff From..To, both included.
type BackfillOptions struct {
	From, To time.Time // 00:00 of a day in the configured zone
	DryRun   bool      // plan each cutoff, write nothing
	Redo     bool      // run cutoffs that already have a successful run, too
	// Progress, when set, is called before each cutoff and once at the end with done == total.
	Progress func(done, total int, asOf time.Time, skipped bool)
}

// BackfillResult adds up a backfill.
type BackfillResult struct {
	Cutoffs, Ran, Skipped int
	Grants                int64
	Amount                decimal.Decimal
}

// Cutoffs lists the daily cutoffs from..to, both included, at 00:00 in loc (DST-safe).
func Cutoffs(from, to time.Time, loc *time.Location) []time.Time {
	var out []time.Time
	y, m, d := from.In(loc).Date()
	for i := 0; ; i++ {
		day := time.Date(y, m, d+i, 0, 0, 0, 0, loc)
		if day.After(to) {
			return out
		}
		out = append(out, day)
	}
}

// Backfill runs every daily cutoff of opts in order. Cutoffs with a successful run are skipped
// unless opts.Redo, so a backfill stopped by a crash or SIGTERM resumes where it stopped, and one
// that overlaps runs already made writes nothing twice (the grants' keys would stop it anyway).
// It stops at the first failure or cancellation, between or inside a run (whose grants are
// atomic), and returns what it did so far with the error.
func (r *Runner) Backfill(ctx context.Context, opts BackfillOptions) (BackfillResult, error) {
	cutoffs := Cutoffs(opts.From, opts.To, r.Config.Location)
	res := BackfillResult{Cutoffs: len(cutoffs)}
	done := map[time.Time]bool{}
	if !opts.Redo && !opts.DryRun {
		succeeded, err := r.Store.SucceededCutoffs(ctx, opts.From, opts.To)
		if err != nil {
			return res, err
		}
		for _, t := range succeeded {
			done[t.UTC()] = true
		}
	}
	for i, asOf := range cutoffs {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("backfill stopped before as_of=%s (%d of %d done): %w", asOf.Format(time.DateOnly), i, len(cutoffs), err)
		}
		skip := done[asOf.UTC()]
		if opts.Progress != nil {
			opts.Progress(i, len(cutoffs), asOf, skip)
		}
		if skip {
			res.Skipped++
			continue
		}
		run, err := r.Run(ctx, RunOptions{AsOf: asOf, DryRun: opts.DryRun, Kind: "backfill"})
		if err != nil {
			return res, fmt.Errorf("backfill as_of=%s (%d of %d done): %w", asOf.Format(time.DateOnly), i, len(cutoffs), err)
		}
		res.Ran++
		res.Grants += run.Plan.Summary.Grants
		res.Amount = res.Amount.Add(run.Plan.Summary.Amount)
	}
	if opts.Progress != nil && len(cutoffs) > 0 {
		opts.Progress(len(cutoffs), len(cutoffs), cutoffs[len(cutoffs)-1], false)
	}
	return res, nil
}
