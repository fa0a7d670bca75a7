package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/schollz/progressbar/v3"

	"github.com/runpod/creditrecon/jobs"
)

func cmdBackfill(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "backfill", "backfill --from DATE --to DATE [--dry-run] [--redo] [flags]",
		"creditrecon backfill --from 2026-01-01 --to 2026-03-31")
	s := &settings{fs: fs}
	var rs runnerSettings
	rs.register(s)
	from := fs.String("from", "", "first cutoff DATE (YYYY-MM-DD), required")
	to := fs.String("to", "", "last cutoff DATE (YYYY-MM-DD), included, required")
	dryRun := fs.Bool("dry-run", false, "plan each cutoff and write nothing (each plan sees only grants already written)")
	redo := fs.Bool("redo", false, "also run cutoffs that already have a successful run (re-runs write only what is newly owed)")
	err := s.parseNone("backfill", args)
	if err != nil {
		return err
	}
	if err := rs.validate(); err != nil {
		return err
	}
	loc := rs.cfg.Location
	first, err := parseDate("from", *from, loc)
	if err != nil {
		return err
	}
	last, err := parseDate("to", *to, loc)
	if err != nil {
		return err
	}
	switch {
	case last.Before(first):
		return usageErrorf("to: %s is before from %s", *to, *from)
	case last.After(e.now()):
		return usageErrorf("to: %s is in the future; the last cutoff must have passed", *to)
	}
	log := newLogger(e.stderr, rs.logFormat)
	r, closeRunner, err := rs.runner(ctx, e, log)
	if err != nil {
		return err
	}
	defer closeRunner()
	progress, finish := backfillProgress(e.stderr, log, len(jobs.Cutoffs(first, last, loc)))
	res, err := r.Backfill(ctx, jobs.BackfillOptions{From: first, To: last, DryRun: *dryRun, Redo: *redo, Progress: progress})
	finish()
	fmt.Fprintf(e.stdout, "backfill %s..%s: %d cutoffs, %d run, %d skipped (already run), %d grants, %s USD%s\n",
		*from, *to, res.Cutoffs, res.Ran, res.Skipped, res.Grants, res.Amount.StringFixed(2), map[bool]string{true: " (dry run: nothing written)"}[*dryRun])
	if err != nil {
		log.Error("backfill stopped", "ran", res.Ran, "skipped", res.Skipped, "error", err.Error())
		return fmt.Errorf("%w (run the same backfill again to resume)", err)
	}
	log.Info("backfill finished", "from", *from, "to", *to, "cutoffs", res.Cutoffs, "ran", res.Ran, "skipped", res.Skipped,
		"grants", res.Grants, "amount_usd", res.Amount.StringFixed(2))
	return nil
}

// backfillProgress shows a progress bar when stderr is a terminal, and plain log lines otherwise
// (a Kubernetes Job's log).
func backfillProgress(stderr io.Writer, log *slog.Logger, total int) (func(int, int, time.Time, bool), func()) {
	if f, ok := stderr.(*os.File); ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())) {
		bar := progressbar.NewOptions(total, progressbar.OptionSetWriter(stderr), progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true), progressbar.OptionClearOnFinish(), progressbar.OptionSetDescription("backfill"))
		return func(done, _ int, asOf time.Time, skipped bool) {
				what := "run"
				if skipped {
					what = "skip"
				}
				bar.Describe(fmt.Sprintf("backfill %s %s", what, asOf.Format(time.DateOnly)))
				bar.Set(done)
			}, func() {
				bar.Finish()
			}
	}
	return func(done, total int, asOf time.Time, skipped bool) {
		if done < total {
			log.Info("backfill cutoff", "as_of", asOf, "index", done+1, "of", total, "skipped_already_run", skipped)
		}
	}, func() {}
}

func parseDate(name, v string, loc *time.Location) (time.Time, error) {
	if v == "" {
		return time.Time{}, usageErrorf("%s: required (a DATE, YYYY-MM-DD)", name)
	}
	t, err := time.ParseInLocation(time.DateOnly, v, loc)
	if err != nil {
		return time.Time{}, usageErrorf("%s: %q is not a DATE (YYYY-MM-DD)", name, v)
	}
	return t, nil
}
