package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/runpod/creditrecon/jobs"
)

func cmdAccept(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "accept", "accept REFERRER_ID --by NAME [--note TEXT]",
		`creditrecon accept user_123 --by alice --note "ticket SUP-42"`)
	s := &settings{fs: fs}
	var c common
	c.register(s)
	by := fs.String("by", "", "who accepts (required): an operator's name, recorded for audit")
	note := fs.String("note", "", "free text, e.g. the support ticket")
	rest, err := s.parse(args)
	if err != nil {
		return err
	}
	if len(rest) != 1 || strings.TrimSpace(rest[0]) == "" {
		return usageErrorf("accept: give exactly one REFERRER_ID")
	}
	if strings.TrimSpace(*by) == "" {
		return usageErrorf("by: required: who accepts the referrer")
	}
	if _, err := c.validate(); err != nil {
		return err
	}
	st, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	created, err := st.Accept(ctx, jobs.Acceptance{ReferrerID: rest[0], AcceptedBy: *by, Note: *note})
	if err != nil {
		return err
	}
	if !created {
		a, err := st.Acceptance(ctx, rest[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s was already accepted on %s by %s; nothing changed\n", rest[0], a.AcceptedAt.UTC().Format("2006-01-02 15:04:05Z"), a.AcceptedBy)
		return nil
	}
	fmt.Fprintf(e.stdout, "accepted %s into the Referral Program; the next run grants what they have earned once eligible\n", rest[0])
	return nil
}
