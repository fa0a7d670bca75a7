package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/runpod/creditrecon/jobs"
)

func cmdRuns(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "runs", "runs [--limit N] [--json]", "creditrecon runs --limit 20")
	s := &settings{fs: fs}
	var c common
	c.register(s)
	limit := fs.Int("limit", 30, "how many runs to show")
	asJSON := fs.Bool("json", false, "print JSON lines instead of a table")
	err := s.parseNone("runs", args)
	if err != nil {
		return err
	}
	if *limit < 1 {
		return usageErrorf("limit: must be at least 1, got %d", *limit)
	}
	if _, err := c.validate(); err != nil {
		return err
	}
	st, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	runs, err := st.Runs(ctx, *limit)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		for _, r := range runs {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tSHARD\tAS_OF\tSTATUS\tSTARTED\tDURATION\tTERMS\tUSAGE_ROWS\tANOMALIES\tGRANTS\tAMOUNT_USD\tCASH_USD\tERROR")
	for _, r := range runs {
		duration := "-"
		if r.FinishedAt != nil {
			duration = r.FinishedAt.Sub(r.StartedAt).Round(time.Millisecond).String()
		}
		shard := r.Shard().String()
		if shard == "" {
			shard = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Kind, shard, r.AsOf.UTC().Format(time.RFC3339), r.Status,
			r.StartedAt.UTC().Format(time.RFC3339), duration, r.TermsLabel(), orDash(r.UsageRows), orDash(r.Anomalies), orDash(r.GrantsWritten),
			orDash(r.AmountGranted), cash(r), orDash(r.Error))
	}
	return tw.Flush()
}

func orDash[T any](p *T) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprint(*p)
}

// cash is the part of a run's amount paid in cash ("-" for a run that granted nothing).
func cash(r jobs.RunRecord) string {
	if r.AmountGranted == nil {
		return "-"
	}
	return r.CashGranted().StringFixed(2)
}
