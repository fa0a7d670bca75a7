package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/runpod/creditrecon/jobs"
)

func cmdExplain(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "explain", "explain BENEFICIARY_ID [--as-of DATE|TIME]", "creditrecon explain user_123 --as-of 2026-02-01")
	s := &settings{fs: fs}
	var c common
	c.register(s)
	cfg := jobs.DefaultConfig()
	programFlags(s, &cfg)
	asOf := fs.String("as-of", "", "cutoff: DATE or TIME (default today 00:00)")
	rest, err := s.parse(args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageErrorf("explain: give exactly one BENEFICIARY_ID")
	}
	if cfg.Location, err = c.validate(); err != nil {
		return err
	}
	cutoff := jobs.Nightly(e.now(), cfg.Location)
	if *asOf != "" {
		if cutoff, err = parseCutoff(*asOf, cfg.Location); err != nil {
			return usageErrorf("as-of: %v", err)
		}
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
	x, err := r.Explain(ctx, rest[0], cutoff)
	if err != nil {
		return fmt.Errorf("explain %q: %w", rest[0], err)
	}
	printExplanation(e.stdout, x)
	return nil
}

func printExplanation(w io.Writer, x *jobs.Explanation) {
	p := x.Params
	fmt.Fprintf(w, "%s as of %s\n", x.BeneficiaryID, x.AsOf.Format(time.RFC3339))
	fmt.Fprintf(w, "thresholds: referral %s%% from %d referrals and %s USD spend, after acceptance; "+
		"template %s%% from %d runtime seconds; serverless %s + %s USD at %s USD serverless spend\n\n",
		p.Referral.Rate.Shift(2), p.Referral.MinReferrals, p.Referral.MinSpend.StringFixed(2),
		p.Template.Rate.Shift(2), p.Template.MinRuntimeSeconds,
		p.Serverless.ReferrerBonus.StringFixed(2), p.Serverless.ReferredBonus.StringFixed(2), p.Serverless.Threshold.StringFixed(2))
	if len(x.Decisions) == 0 {
		fmt.Fprintln(w, "no account pays this user: not a referrer, template creator or referred user before the cutoff")
	} else {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "PROGRAM\tACCOUNT\tSPEND_USD\tEARNED_USD\tELIGIBLE\tTARGET_USD\tGRANTED_USD\tOWED_USD\tCLAWBACK_DUE_USD\tSTATUS\tWHY")
		for _, d := range x.Decisions {
			account := d.AccountID
			if d.Role != "" {
				account += " (" + d.Role + " bonus)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%t\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Program, account, d.Spend.String(), d.Earned.String(),
				d.Eligible, d.Target.StringFixed(2), d.Granted.StringFixed(2), d.Owed.StringFixed(2), d.ClawbackDue.StringFixed(2),
				d.Status, d.Reason)
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "\ngrants written to %s: %d\n", x.BeneficiaryID, len(x.Grants))
	if len(x.Grants) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "GRANT_ID\tPROGRAM\tACCOUNT\tAMOUNT_USD\tGRANTED_BEFORE\tAS_OF\tRUN_ID\tIDEMPOTENCY_KEY")
		for _, g := range x.Grants {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", g.ID, g.Program, strings.TrimSuffix(g.AccountID+"/"+g.Role, "/"),
				g.Amount.StringFixed(2), g.GrantedBefore.StringFixed(2), g.AsOf.Format(time.RFC3339), g.RunID, g.IdempotencyKey)
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "\nusage rows excluded as anomalies as of the cutoff (all users): %d\n", x.Anomalies)
}
