package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/runpod/creditrecon/jobs"
)

func cmdEnroll(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "enroll", "enroll REFERRER_ID --tier TIER --from DATE --by NAME [--note TEXT] [--allow-retroactive]",
		`creditrecon enroll user_123 --tier affiliate-2025 --from 2026-03-01 --by alice --note "SUP-77: 25 paying referrals"`)
	s := &settings{fs: fs}
	var c common
	c.register(s)
	cfg := jobs.DefaultConfig()
	programs := programFlags(s, &cfg)
	tier := fs.String("tier", "", "the partner tier (required): a referral version with `tier: true` in the terms file")
	from := fs.String("from", "", "the enrollment date (required): DATE or TIME; usage from then earns under the tier")
	by := fs.String("by", "", "who enrolls (required): an operator's name, recorded for audit")
	note := fs.String("note", "", "free text, e.g. the ticket")
	retroactive := fs.Bool("allow-retroactive", false, "accept a --from before the latest successful cutoff: usage runs have "+
		"paid under the referrals' own versions moves to the tier (they then report clawback due)")
	rest, err := s.parse(args)
	if err != nil {
		return err
	}
	if len(rest) != 1 || strings.TrimSpace(rest[0]) == "" {
		return usageErrorf("enroll: give exactly one REFERRER_ID")
	}
	if strings.TrimSpace(*by) == "" {
		return usageErrorf("by: required: who enrolls the referrer")
	}
	loc, err := c.validate()
	if err != nil {
		return err
	}
	if *from == "" {
		return usageErrorf("from: required: the date the referrer moves to the tier (DATE or TIME)")
	}
	start, err := parseCutoff(*from, loc)
	if err != nil {
		return usageErrorf("from: %v", err)
	}
	if err := programs.load(); err != nil {
		return err
	}
	if programs.termsFile == "" {
		return usageErrorf("terms: required: partner tiers are versions of the terms file (--terms or CREDITRECON_TERMS)")
	}
	var tiers []string
	found := false
	for _, v := range cfg.Terms.Terms.Referral {
		if v.Tier {
			tiers = append(tiers, v.ID)
			found = found || v.ID == *tier
		}
	}
	if !found {
		list := "none"
		if len(tiers) > 0 {
			list = strings.Join(tiers, ", ")
		}
		return usageErrorf("tier: %q is not a partner tier of %s (its tiers: %s)", *tier, programs.termsFile, list)
	}
	st, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	if _, latest, err := st.TermsInUse(ctx); err != nil {
		return err
	} else if start.Before(latest) && !*retroactive {
		return usageErrorf("from: %s is before the latest successful cutoff %s: usage already paid under the referrals' own terms "+
			"would move to the tier and be paid again in cash; enroll from a later date, or price it with `creditrecon simulate` "+
			"and pass --allow-retroactive", start.UTC().Format(time.RFC3339), latest.UTC().Format(time.RFC3339))
	}
	created, existing, err := st.Enroll(ctx, jobs.Enrollment{ReferrerID: rest[0], Tier: *tier, From: start, EnrolledBy: *by, Note: *note})
	if err != nil {
		return err
	}
	if !created {
		return usageErrorf("%s is already enrolled in tier %s from %s (by %s on %s): enrollments are final and cannot be changed",
			rest[0], existing.Tier, existing.From.UTC().Format(time.RFC3339), existing.EnrolledBy, existing.EnrolledAt.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(e.stdout, "enrolled %s in tier %s from %s; the next run pays the usage from then under the tier\n",
		rest[0], *tier, start.UTC().Format(time.RFC3339))
	return nil
}
