package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/runpod/creditrecon/internal/pgtemp"
	"github.com/runpod/creditrecon/internal/synth"
	"github.com/runpod/creditrecon/jobs"
	"github.com/runpod/creditrecon/reports"
	sqlstore "github.com/runpod/creditrecon/sql"
)

// cmdDemo runs the job on its embedded default: a throwaway PostgreSQL with a small synthetic
// population, an operator accepting the referrers who qualify, the nightly run, its reports.
func cmdDemo(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "demo", "demo [--usage-rows N] [--seed N] [--nights N] [--reports-url URL] [--keep]", "creditrecon demo --usage-rows 50000")
	rows := fs.Int("usage-rows", synth.DemoUsageRows, "usage rows to generate")
	seed := fs.Int64("seed", 1, "seed of the synthetic population")
	reportsURL := fs.String("reports-url", "file://./demo-reports", "where the reports go")
	keep := fs.Bool("keep", false, "leave the PostgreSQL server running and print its DATABASE_URL")
	nights := fs.Int("nights", 1, "nightly runs ending at the cutoff: 90 fills the trend of summary.html")
	if rest, err := parseArgs(fs, args); err != nil {
		return err
	} else if len(rest) > 0 {
		return usageErrorf("demo: unexpected argument %q", rest[0])
	}
	if *rows < 1000 || *rows > 20_000_000 {
		return usageErrorf("usage-rows: must be between 1000 and 20000000, got %d", *rows)
	}
	if *nights < 1 || *nights > 365 {
		return usageErrorf("nights: must be between 1 and 365, got %d", *nights)
	}
	sink, err := reports.OpenSink(ctx, *reportsURL, reports.SinkOptions{})
	if err != nil {
		return &usageError{err}
	}
	log := newLogger(e.stderr, "text")
	fmt.Fprintln(e.stdout, "starting a throwaway PostgreSQL ...")
	cluster, err := pgtemp.Start(ctx)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if *keep {
		defer fmt.Fprintf(e.stdout, "\nthe server is still running:\n  export DATABASE_URL='%s'\n  stop it with: %s\n",
			cluster.URL("postgres"), cluster.StopCommand())
	} else {
		defer cluster.Stop()
	}
	dsn := cluster.URL("postgres")
	db, err := sqlx.Open("postgres", dsn)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer db.Close()
	opts := synth.DefaultOptions(*rows)
	opts.Seed = *seed
	sum, err := synth.Generate(ctx, db, opts)
	if err != nil {
		return fmt.Errorf("demo: generate data: %w", err)
	}
	fmt.Fprintf(e.stdout, "generated %d users, %d referrals, %d templates, %d usage rows (%s to %s) in %s\n",
		sum.Users, sum.Referrals, sum.Templates, sum.UsageRows, opts.Start.Format(time.DateOnly),
		opts.Start.AddDate(0, 0, opts.Days).Format(time.DateOnly), sum.Elapsed.Round(time.Millisecond))

	st, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return err
	}
	// The operators' step: accept the referrers who have 25 referrals (the seed's "contact RunPod").
	var qualified []string
	if err := db.SelectContext(ctx, &qualified, `SELECT referrer_id FROM referrals GROUP BY referrer_id
		HAVING count(*) >= 25 ORDER BY count(*) DESC, referrer_id LIMIT 5`); err != nil {
		return fmt.Errorf("demo: find referrers to accept: %w", err)
	}
	for _, id := range qualified {
		if _, err := st.Accept(ctx, jobs.Acceptance{ReferrerID: id, AcceptedBy: "demo", Note: "qualified referrer"}); err != nil {
			return err
		}
	}
	fmt.Fprintf(e.stdout, "accepted %d referrers into the Referral Program: %v\n\n", len(qualified), qualified)

	cfg := jobs.DefaultConfig()
	cfg.Version = version
	r := &jobs.Runner{Store: st, Config: cfg, Sink: sink, Log: log, Now: e.now}
	cutoff := opts.Start.AddDate(0, 0, opts.Days)
	if *nights > 1 {
		b, err := r.Backfill(ctx, jobs.BackfillOptions{From: cutoff.AddDate(0, 0, 1-*nights), To: cutoff.AddDate(0, 0, -1)})
		if err != nil {
			return fmt.Errorf("demo: backfill: %w", err)
		}
		fmt.Fprintf(e.stdout, "ran the %d nights before the cutoff: %d grants, %s USD\n\n", b.Ran, b.Grants, b.Amount.StringFixed(2))
	}
	res, err := r.Run(ctx, jobs.RunOptions{AsOf: cutoff})
	if err != nil {
		return fmt.Errorf("demo: run: %w", err)
	}
	date := jobs.BusinessDate(cutoff, cfg.Location)
	printSummary(e.stdout, res, date)
	again, err := r.Run(ctx, jobs.RunOptions{AsOf: cutoff})
	if err != nil {
		return fmt.Errorf("demo: second run: %w", err)
	}
	fmt.Fprintf(e.stdout, "\nthe same cutoff again wrote %d grants (idempotent)\n", again.Plan.Summary.Grants)
	fmt.Fprintf(e.stdout, "reports: %s%s\n", *reportsURL, "/"+reports.Prefix(date))
	if len(qualified) > 0 {
		x, err := r.Explain(ctx, qualified[0], cutoff)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "\n$ creditrecon explain %s --as-of %s\n", qualified[0], cutoff.Format(time.DateOnly))
		printExplanation(e.stdout, x)
	}
	return nil
}
