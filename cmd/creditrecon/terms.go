package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shopspring/decimal"

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

// printTerms writes the terms' settings, then one row per version with a summary of its terms.
func printTerms(w io.Writer, t reconcile.Terms) error {
	fmt.Fprintf(w, "holding_days %d, min_grant_usd %s\n\n", t.HoldingDays, t.MinGrant.StringFixed(2))
	type row struct {
		v       reconcile.Version
		summary string
	}
	var rows []row // in the order of t.Records: program, then file order
	for _, v := range t.Referral {
		rows = append(rows, row{v.Version, referralSummary(v)})
	}
	for _, v := range t.Template {
		rows = append(rows, row{v.Version, templateSummary(v)})
	}
	for _, v := range t.Serverless {
		rows = append(rows, row{v.Version, serverlessSummary(v)})
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROGRAM\tID\tFROM\tENABLED\tSHA256\tSUMMARY")
	for i, r := range t.Records() {
		s := rows[i].summary
		if !rows[i].v.Enabled {
			s = "disabled: relationships that bind to it earn nothing in the program"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%s\t%s\n", r.Program, r.ID, fromText(r.From), rows[i].v.Enabled, r.SHA256[:12], s)
	}
	return tw.Flush()
}

func referralSummary(v reconcile.ReferralVersion) string {
	parts := []string{
		ratePeriods(v.Rates, rates),
		"window " + v.Window.String(),
		fmt.Sprintf("from %d referrals and %s USD spend", v.MinReferrals, v.MinSpend.StringFixed(2)),
	}
	if v.RequiresAcceptance {
		parts = append(parts, "acceptance required")
	} else {
		parts = append(parts, "no acceptance")
	}
	if v.MaxAccountAge != nil {
		parts = append(parts, "only accounts created at most "+age(*v.MaxAccountAge)+" before the referral")
	}
	if v.Cap != nil {
		parts = append(parts, "cap "+v.Cap.StringFixed(2)+" USD")
	}
	return strings.Join(parts, "; ")
}

func templateSummary(v reconcile.TemplateVersion) string {
	parts := []string{
		strings.Join(v.Products, ", ") + " at " + ratePeriods(v.Rates, func(r map[string]decimal.Decimal) string {
			return percent(r[reconcile.AnyProduct])
		}),
		fmt.Sprintf("from %d runtime seconds", v.MinRuntimeSeconds),
	}
	if v.Cap != nil {
		parts = append(parts, "cap "+v.Cap.StringFixed(2)+" USD")
	}
	return strings.Join(parts, "; ")
}

func serverlessSummary(v reconcile.ServerlessVersion) string {
	parts := []string{
		fmt.Sprintf("%s spend >= %s USD: %s USD to the referrer + %s USD to the referred user",
			strings.Join(v.Products, ", "), v.Threshold.StringFixed(2), v.ReferrerBonus.StringFixed(2), v.ReferredBonus.StringFixed(2)),
		"window " + v.Window.String(),
	}
	if v.MaxAccountAge != nil {
		parts = append(parts, "only accounts created at most "+age(*v.MaxAccountAge)+" before the referral")
	}
	return strings.Join(parts, "; ")
}

// ratePeriods writes rate periods: the first one's rates, then each later one's with its from.
func ratePeriods(periods []reconcile.RatePeriod, format func(map[string]decimal.Decimal) string) string {
	out := make([]string, len(periods))
	for i, p := range periods {
		out[i] = format(p.Rates)
		if !p.From.IsZero() {
			out[i] = "from " + fromText(p.From) + ": " + out[i]
		}
	}
	return strings.Join(out, ", then ")
}

// rates writes a product -> rate table: pod 3%, serverless 5%, others 2%.
func rates(r map[string]decimal.Decimal) string {
	products := make([]string, 0, len(r))
	for p := range r {
		if p != reconcile.AnyProduct {
			products = append(products, p)
		}
	}
	slices.Sort(products)
	out := make([]string, 0, len(r))
	for _, p := range products {
		out = append(out, p+" "+percent(r[p]))
	}
	if other, ok := r[reconcile.AnyProduct]; ok {
		if len(products) == 0 {
			out = append(out, "all products "+percent(other))
		} else {
			out = append(out, "others "+percent(other))
		}
	}
	return strings.Join(out, ", ")
}

func percent(rate decimal.Decimal) string { return rate.Shift(2).String() + "%" }

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

// age writes a duration as the terms file does: 30d, 24h, 90m (without the zero minutes and
// seconds that time.Duration.String adds).
func age(d time.Duration) string {
	if d > 24*time.Hour && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
