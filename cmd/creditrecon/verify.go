package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/runpod/creditrecon/jobs"
)

func cmdVerify(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "verify", "verify [--as-of DATE|TIME] [flags]", "creditrecon verify --as-of 2026-02-01")
	s := &settings{fs: fs}
	var rs runnerSettings
	rs.register(s)
	asOf := fs.String("as-of", "", "limit the owed and manifest checks to this cutoff (default: every cutoff)")
	err := s.parseNone("verify", args)
	if err != nil {
		return err
	}
	if err := rs.validate(); err != nil {
		return err
	}
	var cutoff time.Time
	if *asOf != "" {
		if cutoff, err = parseCutoff(*asOf, rs.cfg.Location); err != nil {
			return usageErrorf("as-of: %v", err)
		}
	}
	log := newLogger(e.stderr, rs.logFormat)
	r, closeRunner, err := rs.runner(ctx, e, log)
	if err != nil {
		return err
	}
	defer closeRunner()
	rep, err := r.Verify(ctx, jobs.VerifyOptions{AsOf: cutoff})
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tSTATUS\tCHECKED\tFAILED\tWHAT MUST HOLD")
	for _, c := range rep.Checks {
		title := c.Title
		if c.Skipped != "" {
			title += " (" + c.Skipped + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", c.Name, c.Status(), c.Checked, c.Failed, title)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, c := range rep.Checks {
		for _, ex := range c.Examples {
			fmt.Fprintf(e.stdout, "FAIL %s: %s\n", c.Name, ex)
		}
		if more := c.Failed - int64(len(c.Examples)); more > 0 {
			fmt.Fprintf(e.stdout, "FAIL %s: ... and %d more\n", c.Name, more)
		}
	}
	if err := rep.Err(); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	fmt.Fprintln(e.stdout, "all checks passed")
	return nil
}
