package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/runpod/creditrecon/jobs"
	"github.com/runpod/creditrecon/terms"
)

func cmdSimulate(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "simulate", "simulate --proposed FILE [--terms CURRENT] [--as-of DATE|TIME] [--json]",
		"creditrecon simulate --proposed terms/runpod-2025.yaml --terms terms/seed.yaml --as-of 2026-02-01")
	s := &settings{fs: fs}
	var c common
	c.register(s)
	cfg := jobs.DefaultConfig()
	programs := programFlags(s, &cfg)
	proposedFile := fs.String("proposed", "", "the proposed terms file (YAML); required")
	asOf := fs.String("as-of", "", "cutoff: DATE or TIME (default today 00:00)")
	asJSON := fs.Bool("json", false, "print the comparison as JSON")
	if err := s.parseNone("simulate", args); err != nil {
		return err
	}
	if *proposedFile == "" {
		return usageErrorf("proposed: required: the terms file to price (--proposed FILE)")
	}
	var err error
	if cfg.Location, err = c.validate(); err != nil {
		return err
	}
	if err := programs.load(); err != nil {
		return err
	}
	proposed, err := terms.Load(*proposedFile)
	if err != nil {
		return usageErrorf("proposed: %w", err)
	}
	cutoff := jobs.Nightly(e.now(), cfg.Location)
	if *asOf != "" {
		if cutoff, err = parseCutoff(*asOf, cfg.Location); err != nil {
			return usageErrorf("as-of: %v", err)
		}
	}
	if cutoff.After(e.now()) {
		return usageErrorf("as-of: %s is in the future; a cutoff must have passed", cutoff.Format(time.RFC3339))
	}
	if err := cfg.Validate(); err != nil {
		return &usageError{err}
	}
	st, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	r := &jobs.Runner{Store: st, Config: cfg, Log: newLogger(e.stderr, c.logFormat), Now: e.now}
	sim, err := r.Simulate(ctx, proposed, cutoff)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(sim)
	}
	printSimulation(e.stdout, sim, *proposedFile)
	return nil
}

func printSimulation(w io.Writer, sim *jobs.Simulation, proposed string) {
	fmt.Fprintf(w, "as of %s: current terms beside %s (nothing written)\n\n", sim.AsOf.Format(time.RFC3339), proposed)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "PROGRAM\tVERSION\tACCOUNTS\tELIGIBLE\tEARNED_USD\tTARGET_USD\tGRANTED_USD\tGRANT_NOW_USD\t"+
		"PROPOSED_ACCOUNTS\tPROPOSED_ELIGIBLE\tPROPOSED_EARNED_USD\tPROPOSED_TARGET_USD\tPROPOSED_GRANT_NOW_USD\tTARGET_DIFF_USD\tGRANT_NOW_DIFF_USD\t")
	for _, v := range sim.Versions {
		c, p := v.Current, v.Proposed
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t\n", v.Program, cmp.Or(v.TermsID, "-"),
			c.Accounts, c.Eligible, c.Earned.StringFixed(4), c.Target.StringFixed(2), c.Granted.StringFixed(2), c.Owed.StringFixed(2),
			p.Accounts, p.Eligible, p.Earned.StringFixed(4), p.Target.StringFixed(2), p.Owed.StringFixed(2),
			v.TargetDiff.StringFixed(2), v.OwedDiff.StringFixed(2))
	}
	tw.Flush()
	fmt.Fprintf(w, "\naccounts whose target moves most (%d):\n", len(sim.Movers))
	if len(sim.Movers) == 0 {
		fmt.Fprintln(w, "  none")
		return
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROGRAM\tACCOUNT\tBENEFICIARY\tCURRENT_TARGET_USD\tPROPOSED_TARGET_USD\tDIFF_USD")
	for _, m := range sim.Movers {
		account := m.AccountID
		if m.Role != "" {
			account += " (" + m.Role + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", m.Program, account, m.BeneficiaryID, m.Current.StringFixed(2),
			m.Proposed.StringFixed(2), m.Diff.StringFixed(2))
	}
	tw.Flush()
}
