package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/runpod/creditrecon/jobs"
	"github.com/runpod/creditrecon/reconcile"
	sqlstore "github.com/runpod/creditrecon/sql"
)

func cmdRun(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "run", "run [--as-of DATE|TIME] [--dry-run] [--full] [--shard I/N] [--terms FILE] [--allow-retroactive] [--query-plans] [flags]",
		"creditrecon run --as-of 2026-02-01 --dry-run")
	s := &settings{fs: fs}
	var rs runnerSettings
	rs.register(s)
	asOf := fs.String("as-of", "", "cutoff: DATE (YYYY-MM-DD, 00:00 in --timezone) or TIME (RFC 3339); default today 00:00")
	dryRun := fs.Bool("dry-run", false, "print the grants the run would write, and write nothing")
	full := fs.Bool("full", false, "read the whole usage history instead of extending the last run's aggregates")
	retroactive := fs.Bool("allow-retroactive", false, "accept terms that re-price usage already counted (a version or rate period "+
		"from before the latest successful cutoff): the run reads the whole history, grants what more is owed, reports the "+
		"rest as clawback_due, and the ledger records it")
	queryPlans := fs.Bool("query-plans", false, "print each pass over usage (its SQL and EXPLAIN ANALYZE plan) to stderr: where a run's time goes")
	shardFlag := fs.String("shard", "", "process only the accounts of shard I of N (I/N, e.g. $(JOB_COMPLETION_INDEX)/4 in an Indexed Job); the last shard to finish writes the reports")
	err := s.parseNone("run", args)
	if err != nil {
		return err
	}
	if err := rs.validate(); err != nil {
		return err
	}
	var shard jobs.Shard
	if *shardFlag != "" || flagSet(fs, "shard") {
		if shard, err = jobs.ParseShard(*shardFlag); err != nil {
			return usageErrorf("%v", err)
		}
	}
	cutoff := jobs.Nightly(e.now(), rs.cfg.Location)
	// An explicit --as-of "" (an unset variable in a script or manifest) is an error, not
	// "today": shards or retries that each took today could straddle midnight.
	if *asOf != "" || flagSet(fs, "as-of") {
		if cutoff, err = parseCutoff(*asOf, rs.cfg.Location); err != nil {
			return usageErrorf("as-of: %v", err)
		}
	}
	if cutoff.After(e.now()) {
		return usageErrorf("as-of: %s is in the future; a cutoff must have passed", cutoff.Format(time.RFC3339))
	}
	log := newLogger(e.stderr, rs.logFormat)
	r, closeRunner, err := rs.runner(ctx, e, log)
	if err != nil {
		return err
	}
	defer closeRunner()
	if *queryPlans {
		ctx = sqlstore.WithExplain(ctx, e.stderr)
	}
	res, err := r.Run(ctx, jobs.RunOptions{AsOf: cutoff, DryRun: *dryRun, Full: *full, Shard: shard, AllowRetroactive: *retroactive})
	if err != nil {
		log.Error("run failed", "as_of", cutoff, "error", err.Error())
		return fmt.Errorf("run as_of=%s: %w", cutoff.Format(time.RFC3339), err)
	}
	if *dryRun {
		printPlan(e.stdout, res.Plan, jobs.BusinessDate(cutoff, rs.cfg.Location))
		return nil
	}
	printSummary(e.stdout, res, jobs.BusinessDate(cutoff, rs.cfg.Location))
	return nil
}

func printPlan(w io.Writer, p jobs.Plan, date string) {
	shard := ""
	if p.Summary.Shard.Sharded() {
		shard = " of shard " + p.Summary.Shard.String()
	}
	fmt.Fprintf(w, "DRY RUN%s as of %s (business date %s): nothing written.\n\n", shard, p.Summary.AsOf.Format(time.RFC3339), date)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROGRAM\tBENEFICIARY\tACCOUNT\tAMOUNT_USD\tGRANTED_BEFORE\tEARNED_USD\tIDEMPOTENCY_KEY")
	for _, g := range p.Grants {
		account := g.AccountID
		if g.Role != "" {
			account += " (" + g.Role + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", g.Program, g.BeneficiaryID, account,
			g.Amount.StringFixed(2), g.GrantedBefore.StringFixed(2), g.Earned.String(), g.IdempotencyKey)
	}
	tw.Flush()
	fmt.Fprintln(w)
	printTotals(w, p.Summary)
}

func printSummary(w io.Writer, res *jobs.Result, date string) {
	s := res.Plan.Summary
	shard := ""
	if s.Shard.Sharded() {
		shard = " shard " + s.Shard.String()
	}
	fmt.Fprintf(w, "run %d%s as of %s (business date %s): %d grants, %s USD\n",
		res.RunID, shard, s.AsOf.Format(time.RFC3339), date, s.Grants, s.Amount.StringFixed(2))
	printTotals(w, s)
}

func printTotals(w io.Writer, s jobs.Summary) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "program\taccounts\teligible\tusage_rows\tspend_usd\tearned_usd\tgrants\tgranted_usd\tclawback_due_usd\t")
	for _, p := range reconcile.Programs {
		ps := s.Programs[p]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%d\t%s\t%s\t\n", p, ps.Accounts, ps.Eligible, ps.UsageRows,
			ps.Spend.StringFixed(2), ps.Earned.StringFixed(4), ps.Grants, ps.Amount.StringFixed(2), ps.ClawbackDue.StringFixed(2))
	}
	tw.Flush()
	fmt.Fprintf(w, "usage rows considered: %d, anomalies excluded: %d\n", s.UsageRows, s.Anomalies)
	switch a := s.Aggregates; a.Mode {
	case "incremental":
		fmt.Fprintf(w, "incremental: extended run %d with %d usage rows\n", a.BaseRunID, a.DeltaRows)
	case "full":
		if a.FullBecause != "" {
			fmt.Fprintf(w, "full: %s\n", a.FullBecause)
		}
	}
}
