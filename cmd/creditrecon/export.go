package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/runpod/creditrecon/jobs"
	"github.com/runpod/creditrecon/reports"
)

func cmdExport(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "export", "export --as-of DATE|TIME [flags]", "creditrecon export --as-of 2026-02-01")
	s := &settings{fs: fs}
	var rs runnerSettings
	rs.register(s)
	asOf := fs.String("as-of", "", "the cutoff whose reports to write again (required)")
	err := s.parseNone("export", args)
	if err != nil {
		return err
	}
	if err := rs.validate(); err != nil {
		return err
	}
	if *asOf == "" {
		return usageErrorf("as-of: required: the cutoff whose reports to export")
	}
	cutoff, err := parseCutoff(*asOf, rs.cfg.Location)
	if err != nil {
		return usageErrorf("as-of: %v", err)
	}
	log := newLogger(e.stderr, rs.logFormat)
	r, closeRunner, err := rs.runner(ctx, e, log)
	if err != nil {
		return err
	}
	defer closeRunner()
	man, err := r.Export(ctx, cutoff)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "exported the reports of run %d as of %s to %s\n", man.RunID, man.AsOf.Format(time.RFC3339),
		reports.Prefix(man.BusinessDate))
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FILE\tROWS\tBYTES\tSHA256")
	for _, f := range man.Files {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", f.Key, f.Rows, f.Bytes, f.SHA256)
	}
	return tw.Flush()
}

func cmdReports(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "reports", "reports --as-of DATE [--expires 24h]", "creditrecon reports --as-of 2026-02-01 --expires 24h")
	s := &settings{fs: fs}
	var rep reportSettings
	rep.register(s)
	timezone := "UTC"
	s.String(&timezone, "timezone", "CREDITRECON_TIMEZONE", "IANA zone of DATE cutoffs")
	asOf := fs.String("as-of", "", "the cutoff whose reports to list (required); the files are under its business date")
	expires := fs.Duration("expires", 24*time.Hour, "how long download links stay valid (S3; at most 7 days)")
	err := s.parseNone("reports", args)
	if err != nil {
		return err
	}
	loc, err := time.LoadLocation(timezone)
	if err != nil {
		return usageErrorf("timezone: unknown zone %q", timezone)
	}
	if *asOf == "" {
		return usageErrorf("as-of: required")
	}
	cutoff, err := parseCutoff(*asOf, loc)
	if err != nil {
		return usageErrorf("as-of: %v", err)
	}
	if *expires <= 0 || *expires > 7*24*time.Hour {
		return usageErrorf("expires: must be between 1s and 168h, got %s", *expires)
	}
	sink, err := rep.open(ctx)
	if err != nil {
		return err
	}
	date := jobs.BusinessDate(cutoff, loc)
	man, err := reports.ReadManifest(ctx, sink, date)
	if err != nil {
		return fmt.Errorf("reports of business date %s (as of %s): %w; export them with `creditrecon export --as-of`",
			date, cutoff.Format(time.RFC3339), err)
	}
	fmt.Fprintf(e.stdout, "reports of business date %s (run %d, as of %s); verify each download's SHA-256 against manifest.json\n",
		date, man.RunID, man.AsOf.Format(time.RFC3339))
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FILE\tROWS\tBYTES\tSHA256\tLINK")
	keys := append([]reports.File{}, man.Files...)
	keys = append(keys, reports.File{Key: reports.Prefix(date) + "manifest.json"})
	for _, f := range keys {
		link, err := sink.Link(ctx, f.Key, *expires)
		if err != nil {
			return fmt.Errorf("link %s: %w", f.Key, err)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", f.Key, f.Rows, f.Bytes, f.SHA256, link)
	}
	return tw.Flush()
}
