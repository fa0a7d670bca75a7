package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/runpod/creditrecon/jobs"
	"github.com/runpod/creditrecon/reconcile"
	"github.com/runpod/creditrecon/terms"
)

func cmdExplain(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "explain", "explain BENEFICIARY_ID [--as-of DATE|TIME]", "creditrecon explain user_123 --as-of 2026-02-01")
	s := &settings{fs: fs}
	var c common
	c.register(s)
	cfg := jobs.DefaultConfig()
	programs := programFlags(s, &cfg)
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
	if err := programs.load(); err != nil {
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
	fmt.Fprintf(w, "%s as of %s\n", x.BeneficiaryID, x.AsOf.Format(time.RFC3339))
	if x.Terms.HoldingDays > 0 {
		fmt.Fprintf(w, "usage counts once it is %d days old: usage before %s\n", x.Terms.HoldingDays, x.UsageCutoff.Format(time.RFC3339))
	}
	// Every version of the terms in force, those of the accounts and referrals below marked.
	used := map[string]bool{}
	for _, d := range x.Decisions {
		used[string(d.Program)+"/"+d.TermsID] = true
	}
	for _, b := range x.Referrals {
		used[string(reconcile.Referral)+"/"+b.TermsID] = true
		used[string(reconcile.ServerlessReferral)+"/"+b.ServerlessTermsID] = true
	}
	fmt.Fprintln(w, "terms (* the versions of the accounts and referrals below):")
	for _, v := range x.Terms.Records() {
		mark := " "
		if used[string(v.Program)+"/"+v.ID] {
			mark = "*"
		}
		fmt.Fprintf(w, " %s %s %s: %s\n", mark, v.Program, v.ID, terms.Describe(x.Terms, v.Program, v.ID))
	}
	fmt.Fprintln(w)
	if len(x.Decisions) == 0 {
		fmt.Fprintln(w, "no account pays this user: not a referrer, template creator or referred user before the cutoff")
	} else {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "PROGRAM\tACCOUNT\tSPEND_USD\tEARNED_USD\tELIGIBLE\tTARGET_USD\tGRANTED_USD\tOWED_USD\tCLAWBACK_DUE_USD\tSTATUS\tTERMS\tHELD_SPEND_USD\tHELD_EARNED_USD\tWHY")
		for _, d := range x.Decisions {
			account := d.AccountID
			if d.Role != "" {
				account += " (" + d.Role + " bonus)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%t\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Program, account,
				d.Spend.String(), d.Earned.String(), d.Eligible, d.Target.StringFixed(2), d.Granted.StringFixed(2), d.Owed.StringFixed(2),
				d.ClawbackDue.StringFixed(2), d.Status, cmp.Or(d.TermsID, "-"), d.HeldSpend.String(), d.HeldEarned.String(), d.Reason)
		}
		tw.Flush()
	}
	for _, d := range x.Decisions {
		if d.Bonus == nil {
			continue
		}
		fmt.Fprintf(w, "\nsignup bonus of %s's referral, %s (%s): country %s, %s", d.ReferredUser, d.Role, d.TermsID,
			cmp.Or(d.Bonus.Country, "unknown"), d.Bonus.Kind)
		if b := d.Bonus.Drawn; b != nil {
			v, _ := x.Terms.SignupVersion(d.TermsID)
			var table []string
			for i, e := range v.Draw {
				mark := ""
				if i == b.Entry {
					mark = " <"
				}
				table = append(table, fmt.Sprintf("%s x%d%s", e.USD.StringFixed(2), e.Weight, mark))
			}
			fmt.Fprintf(w, ": u = %s, entry %d of [%s] = %s USD", b.U, b.Entry, strings.Join(table, ", "), b.USD.StringFixed(2))
		}
		fmt.Fprintln(w)
	}
	if len(x.Referrals) > 0 {
		fmt.Fprintf(w, "\nreferrals of %s before the cutoff (as referrer or referred user; at most %d):\n", x.BeneficiaryID, len(x.Referrals))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "REFERRED_USER\tREFERRER\tREFERRED_AT\tREFERRAL_TERMS\tREFERRAL_WINDOW_END\tSERVERLESS_TERMS\tSERVERLESS_WINDOW_END\tNOTE")
		for _, b := range x.Referrals {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", b.ReferredUserID, b.ReferrerID, b.ReferredAt.Format(time.RFC3339),
				cmp.Or(b.TermsID, "-"), windowEnd(b.TermsID, b.WindowEnd), cmp.Or(b.ServerlessTermsID, "-"),
				windowEnd(b.ServerlessTermsID, b.ServerlessWindowEnd), referralNote(b))
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

func windowEnd(termsID string, end *time.Time) string {
	switch {
	case termsID == "":
		return "-"
	case end == nil:
		return "lifetime"
	default:
		return end.Format(time.RFC3339)
	}
}

// referralNote says why a referral earns nothing in a program, if it does not.
func referralNote(b jobs.ReferralBinding) string {
	if b.SelfReferral {
		return "self-referral: earns nothing"
	}
	var notes []string
	for _, p := range []struct {
		program, termsID string
		enabled, isNew   bool
	}{
		{"referral", b.TermsID, b.Enabled, b.NewAccount},
		{"serverless_referral", b.ServerlessTermsID, b.ServerlessEnabled, b.ServerlessNewAccount},
	} {
		switch {
		case p.termsID == "":
			notes = append(notes, p.program+": referred before the program's first terms version")
		case !p.enabled:
			notes = append(notes, p.program+": terms version "+p.termsID+" is disabled")
		case !p.isNew:
			notes = append(notes, p.program+": not_new_account (created too long before the referral)")
		}
	}
	return strings.Join(notes, "; ")
}
