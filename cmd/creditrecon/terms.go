package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/runpod/creditrecon/reconcile"
	"github.com/runpod/creditrecon/terms"
)

func cmdTerms(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "terms", "terms check FILE", "creditrecon terms check terms/runpod-2025.yaml")
	s := &settings{fs: fs}
	rest, err := s.parse(args)
	if err != nil {
		return err
	}
	if len(rest) == 0 || rest[0] != "check" {
		return usageErrorf("terms: give a subcommand: terms check FILE")
	}
	if len(rest) != 2 {
		return usageErrorf("terms check: give exactly one FILE")
	}
	path := rest[1]
	t, err := terms.Load(path)
	if err != nil {
		// A bad terms file is bad configuration: every command that reads it exits 2 (SPEC 7.1).
		return &usageError{fmt.Errorf("terms check %s: fix the file and check it again:\n%w", path, err)}
	}
	return printTerms(e.stdout, t)
}

// printTerms writes the terms' settings, then one row per version: its hash (the one runs
// record, SPEC 7.3) and what it pays, as explain describes it. A partner tier's FROM is
// "enrollment": it binds the referrers enrolled into it, each from its own date (SPEC 8.2).
func printTerms(w io.Writer, t reconcile.Terms) error {
	fmt.Fprintf(w, "holding_days %d, min_grant_usd %s\n\n", t.HoldingDays, t.MinGrant.StringFixed(2))
	type row struct {
		enabled bool
		from    string
	}
	var rows []row // in the order of t.Records: program, then file order
	for _, v := range t.Referral {
		from := fromText(v.From)
		if v.Tier {
			from = "enrollment" // a partner tier binds enrolled referrers, each from its date (SPEC 8.2)
		}
		rows = append(rows, row{v.Enabled, from})
	}
	for _, v := range t.Template {
		rows = append(rows, row{v.Enabled, fromText(v.From)})
	}
	for _, v := range t.Serverless {
		rows = append(rows, row{v.Enabled, fromText(v.From)})
	}
	for _, v := range t.Signup {
		rows = append(rows, row{v.Enabled, fromText(v.From)})
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROGRAM\tID\tFROM\tENABLED\tSHA256\tSUMMARY")
	for i, r := range t.Records() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%s\t%s\n", r.Program, r.ID, rows[i].from, rows[i].enabled, r.SHA256[:12],
			terms.Describe(t, r.Program, r.ID))
	}
	return tw.Flush()
}

// fromText writes a from as the terms file does: - for since forever, a DATE at 00:00 UTC,
// else an RFC 3339 time in UTC.
func fromText(t time.Time) string {
	switch t = t.UTC(); {
	case t.IsZero():
		return "-"
	case t.Equal(t.Truncate(24 * time.Hour)):
		return t.Format(time.DateOnly)
	default:
		return t.Format(time.RFC3339Nano)
	}
}
