package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/runpod/creditrecon/internal/synth"
)

// cmdGenerate fills the source tables of a test database with a synthetic population, or appends
// one more day of usage to it: for benchmarks and demos, never for production.
func cmdGenerate(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "generate", "generate [--usage-rows N] [--seed N] [--append-day DATE --rows N --late-share F]",
		"DATABASE_URL=postgres://localhost/bench creditrecon generate --usage-rows 10000000")
	s := &settings{fs: fs}
	var c common
	c.register(s)
	rows := fs.Int("usage-rows", synth.DemoUsageRows, "usage rows of the population (also given with --append-day: the population's size)")
	seed := fs.Int64("seed", 1, "seed of the population")
	appendDay := fs.String("append-day", "", "append one day of usage dated DATE (YYYY-MM-DD) instead of generating")
	dayRows := fs.Int("rows", 100_000, "with --append-day: usage rows to append")
	lateShare := fs.Float64("late-share", 0.05, "with --append-day: share of the rows dated in the 30 days before DATE")
	truncate := fs.Bool("truncate", false, "empty the source tables first")
	err := s.parseNone("generate", args)
	if err != nil {
		return err
	}
	if _, err := c.validate(); err != nil {
		return err
	}
	o := synth.DefaultOptions(*rows)
	o.Seed, o.Truncate = *seed, *truncate
	o.Logf = func(format string, args ...any) { fmt.Fprintf(e.stderr, format+"\n", args...) }
	var day time.Time
	if *appendDay != "" {
		if day, err = parseDate("append-day", *appendDay, time.UTC); err != nil {
			return err
		}
	}
	db, err := sqlx.Open("postgres", c.databaseURL)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer db.Close()
	var sum synth.Summary
	if *appendDay != "" {
		sum, err = synth.AppendDay(ctx, db, o, day, *dayRows, *lateShare)
	} else {
		sum, err = synth.Generate(ctx, db, o)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "users=%d referrals=%d templates=%d usage_rows=%d added=%d late=%d refunds=%d loads=%d loads_added=%d seconds=%.2f history_end=%s\n",
		sum.Users, sum.Referrals, sum.Templates, sum.UsageRows, sum.Added, sum.Late, sum.Refunds, sum.Loads, sum.LoadsAdded, sum.Elapsed.Seconds(),
		o.Start.AddDate(0, 0, o.Days).Format(time.DateOnly))
	return nil
}
