package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/shopspring/decimal"

	"github.com/runpod/creditrecon/reconcile"
	"github.com/runpod/creditrecon/reports"
)

// ErrNoRun means a cutoff has no run whose grants committed, so it has no reports to export.
var ErrNoRun = errors.New("no run of this cutoff committed its grants")

// Export re-exports the reports of a cutoff from the database: the usage aggregates and anomalies
// recorded by the runs of the cutoff's report set (see ReportSet; ErrNoRun if none, a
// *ShardsIncompleteError if a shard is missing), with their parameters, and the grants as of the
// cutoff. The same data gives byte-identical files, also after later cutoffs have run; usage that
// arrived since those runs shows after a new run of the cutoff. For a sharded night this is the
// merge: one set of reports and one manifest over every shard's accounts.
func (r *Runner) Export(ctx context.Context, asOf time.Time) (reports.Manifest, error) {
	return r.export(ctx, r.Store, asOf)
}

// export writes the reports of a cutoff from one snapshot of rd, in which it also finds the
// report set, so that a shard committing meanwhile cannot tear it.
func (r *Runner) export(ctx context.Context, rd Reader, asOf time.Time) (reports.Manifest, error) {
	if r.Sink == nil {
		return reports.Manifest{}, errors.New("no reports sink configured (REPORTS_URL)")
	}
	asOf = asOf.In(r.Config.Location)
	var man reports.Manifest
	var latest RunRecord
	err := rd.Snapshot(ctx, func(s Snapshot) error {
		set, err := s.ReportRuns(ctx, asOf)
		if err != nil {
			return err
		}
		if set == nil {
			return fmt.Errorf("%w; run it first (creditrecon run --as-of)", ErrNoRun)
		}
		latest = set.Latest()
		terms, paramsJSON, termsJSON, err := r.reportTerms(set)
		if err != nil {
			return err
		}
		src := &reportSource{s: s, terms: terms, secret: r.Config.DrawSecret, runIDs: set.IDs(), asOf: asOf,
			totals: map[string]reports.ProgramTotals{}}
		payouts, err := s.PayoutTotals(ctx, asOf)
		if err != nil {
			return err
		}
		info := reports.ManifestInfo{
			RunID:        latest.ID,
			AsOf:         asOf,
			BusinessDate: BusinessDate(asOf, r.Config.Location),
			Parameters:   paramsJSON,
			Terms:        termsJSON,
			Version:      latest.Version,
			AnomalyCount: set.Anomalies,
			Totals:       src.controlTotals,
			Summary:      src.summary,
			PayoutTotals: map[string]reports.PayoutTotals{},
		}
		for p, t := range payouts {
			info.PayoutTotals[p] = reports.PayoutTotals{GrantsAsOf: t.GrantsAsOf, GrantedAsOfUSD: t.GrantedAsOf, GrantedToDateUSD: t.GrantedToDate}
		}
		if len(set.Runs) > 1 {
			info.ShardRunIDs = set.IDs()
		}
		man, err = reports.Export(ctx, r.Sink, info, src)
		return err
	})
	if err != nil {
		return man, fmt.Errorf("export reports as_of=%s: %w", asOf.Format(time.RFC3339), err)
	}
	r.Log.Info("reports exported", "run_id", latest.ID, "shard_run_ids", man.ShardRunIDs, "as_of", asOf,
		"business_date", man.BusinessDate, "files", len(man.Files))
	return man, nil
}

// reportTerms returns the terms of a report set's runs, and the JSON of their parameters and
// terms for the manifest. The shards of one night must have used the same.
func (r *Runner) reportTerms(set *ReportSet) (reconcile.Terms, []byte, []byte, error) {
	var terms reconcile.Terms
	var paramsJSON, termsJSON []byte
	for _, run := range set.Runs {
		p := r.Config.Params
		if err := json.Unmarshal(run.Parameters, &p); err != nil {
			return terms, nil, nil, fmt.Errorf("parameters of run %d: %w", run.ID, err)
		}
		// Re-encode: jsonb reorders keys, and the manifest must not depend on where they came from.
		b, err := json.Marshal(p)
		if err != nil {
			return terms, nil, nil, fmt.Errorf("encode parameters of run %d: %w", run.ID, err)
		}
		t, tb, err := termsOfRun(r.Config.Params, run.Parameters, run.Terms)
		if err != nil {
			return terms, nil, nil, fmt.Errorf("terms of run %d: %w", run.ID, err)
		}
		if paramsJSON != nil && (!bytes.Equal(b, paramsJSON) || !bytes.Equal(tb, termsJSON)) {
			return terms, nil, nil, fmt.Errorf("shard runs %v used different parameters or terms: run every shard of the night again with the same", set.IDs())
		}
		terms, paramsJSON, termsJSON = t, b, tb
	}
	return terms, paramsJSON, termsJSON, nil
}

// BusinessDate is the day a cutoff closes: the day before it, in loc.
func BusinessDate(asOf time.Time, loc *time.Location) string {
	return asOf.Add(-time.Nanosecond).In(loc).Format(time.DateOnly)
}

// reportSource streams a snapshot's rows as report rows, evaluating each account as of the
// cutoff (grants with as_of <= cutoff count as granted), and adds up usage and earnings.
type reportSource struct {
	s      Snapshot
	terms  reconcile.Terms
	secret []byte
	runIDs []int64
	asOf   time.Time
	totals map[string]reports.ProgramTotals
	sum    summaryTally // what summary.html shows of the accounts (summary.go)
}

func (src *reportSource) add(p reconcile.Program, usageRows int64, spend, earned decimal.Decimal) {
	t := src.totals[string(p)]
	t.UsageRows += usageRows
	t.UsageConsideredUSD = t.UsageConsideredUSD.Add(spend)
	t.EarnedUSD = t.EarnedUSD.Add(earned)
	src.totals[string(p)] = t
}

// controlTotals completes the usage and earnings added up while streaming with the granted
// totals, summed by the database independently of the rows.
func (src *reportSource) controlTotals(ctx context.Context) (map[string]reports.ProgramTotals, error) {
	granted, err := src.s.GrantTotals(ctx, src.asOf)
	if err != nil {
		return nil, err
	}
	for _, p := range reconcile.Programs {
		t := src.totals[string(p)]
		t.GrantedAsOfUSD, t.GrantedToDateUSD = granted[p].GrantedAsOf, granted[p].GrantedToDate
		src.totals[string(p)] = t
	}
	return src.totals, nil
}

func (src *reportSource) query() Query { return Query{Runs: src.runIDs, AsOf: src.asOf} }

func (src *reportSource) Grants(ctx context.Context, fn func(reports.GrantRow) error) error {
	return src.s.Grants(ctx, GrantFilter{AsOf: src.asOf}, func(g GrantRecord) error {
		return fn(reports.GrantRow{GrantID: g.ID, Program: g.Program, TermsID: g.TermsID, BeneficiaryID: g.BeneficiaryID, AmountUSD: g.Amount,
			AsOf: g.AsOf, IdempotencyKey: g.IdempotencyKey, AccountID: g.AccountID, TemplateID: g.TemplateID,
			ReferredUserID: g.ReferredUserID, Role: g.Role, GrantedBeforeUSD: g.GrantedBefore, EarnedUSD: g.Earned,
			RunID: g.RunID, CreatedAt: g.CreatedAt})
	})
}

func (src *reportSource) Referrers(ctx context.Context, fn func(reports.ReferrerRow) error) error {
	p, q := src.terms, src.query()
	return src.s.Referrers(ctx, q, func(t reconcile.ReferrerTotals) error {
		t.Granted = t.GrantedAsOf
		d := p.EvaluateReferrer(t)
		src.add(reconcile.Referral, t.UsageRows, d.Spend, d.Earned)
		src.tallyReferrer(t, d)
		return fn(reports.ReferrerRow{ReferrerID: t.ReferrerID, TermsID: t.TermsID, Referrals: t.Referrals, NotNewReferrals: t.NotNew, ReferralSpendUSD: d.Spend,
			EarnedUSD: d.Earned, TargetUSD: d.Target, GrantedUSD: d.Granted, ClawbackDueUSD: d.ClawbackDue,
			Accepted: t.Accepted, Status: d.Status, StatusReason: d.Reason})
	})
}

func (src *reportSource) Templates(ctx context.Context, fn func(reports.TemplateRow) error) error {
	p, q := src.terms, src.query()
	return src.s.Templates(ctx, q, func(t reconcile.TemplateTotals) error {
		t.Granted = t.GrantedAsOf
		d := p.EvaluateTemplate(t)
		src.add(reconcile.Template, t.UsageRows, d.Spend, d.Earned)
		src.tallyTemplate(t, d)
		return fn(reports.TemplateRow{TemplateID: t.TemplateID, TermsID: t.TermsID, CreatorID: t.CreatorID, RuntimeSeconds: t.RuntimeSeconds,
			TemplateSpendUSD: d.Spend, EarnedUSD: d.Earned, TargetUSD: d.Target, GrantedUSD: d.Granted,
			ClawbackDueUSD: d.ClawbackDue, Status: d.Status, StatusReason: d.Reason})
	})
}

// ServerlessReferrals lists the referrals that reached the threshold or were paid a bonus;
// the usage of every referral counts in the control totals.
func (src *reportSource) ServerlessReferrals(ctx context.Context, fn func(reports.ServerlessRow) error) error {
	p, q := src.terms, src.query()
	return src.s.Serverless(ctx, q, func(t reconcile.ServerlessTotals) error {
		t.GrantedReferrer, t.GrantedReferred = t.GrantedReferrerAsOf, t.GrantedReferredAsOf
		ds := p.EvaluateServerless(t)
		src.add(reconcile.ServerlessReferral, t.UsageRows, t.Spend, ds[0].Earned.Add(ds[1].Earned))
		src.tallyServerless(t, ds)
		if !ds[0].Eligible && ds[0].Granted.IsZero() && ds[1].Granted.IsZero() {
			return nil
		}
		return fn(reports.ServerlessRow{ReferredUserID: t.ReferredUserID, TermsID: t.TermsID, ReferrerID: t.ReferrerID,
			ServerlessSpendUSD: t.Spend, GrantedUSD: t.GrantedReferrer.Add(t.GrantedReferred),
			ReferrerGrantedUSD: t.GrantedReferrer, ReferredGrantedUSD: t.GrantedReferred, Status: ds[0].Status})
	})
}

// SignupBonuses lists both roles of every referral bound to a signup bonus version; their loads
// count in the control totals once per referral.
func (src *reportSource) SignupBonuses(ctx context.Context, fn func(reports.SignupBonusRow) error) error {
	if len(src.terms.Signup) == 0 {
		return nil
	}
	return src.s.Signups(ctx, src.query(), func(t reconcile.SignupTotals) error {
		t.GrantedReferrer, t.GrantedReferred = t.GrantedReferrerAsOf, t.GrantedReferredAsOf
		ds, err := src.terms.EvaluateSignup(t, src.secret)
		if err != nil {
			return err
		}
		src.add(reconcile.SignupBonus, 0, t.Loads, ds[0].Earned.Add(ds[1].Earned))
		src.tallySignup(t, ds)
		for _, d := range ds {
			row := reports.SignupBonusRow{ReferredUserID: t.ReferredUserID, ReferrerID: t.ReferrerID, TermsID: t.TermsID,
				Role: d.Role, BeneficiaryID: d.BeneficiaryID, LoadsUSD: t.Loads, Reached: d.Eligible, AmountUSD: d.Target,
				GrantedUSD: d.Granted, Payout: d.Payout, Status: d.Status}
			if b := d.Bonus; b != nil {
				row.Country, row.Kind = b.Country, b.Kind
				if b.Drawn != nil {
					row.U, row.DrawEntry = b.Drawn.U.String(), strconv.Itoa(b.Drawn.Entry)
				}
			}
			if err := fn(row); err != nil {
				return err
			}
		}
		return nil
	})
}

// Payouts lists the cash grants as of the cutoff.
func (src *reportSource) Payouts(ctx context.Context, fn func(reports.PayoutRow) error) error {
	return src.s.Grants(ctx, GrantFilter{AsOf: src.asOf}, func(g GrantRecord) error {
		if g.Payout != reconcile.PayoutCash {
			return nil
		}
		return fn(reports.PayoutRow{GrantID: g.ID, Program: g.Program, BeneficiaryID: g.BeneficiaryID, TermsID: g.TermsID,
			AmountUSD: g.Amount, AsOf: g.AsOf, IdempotencyKey: g.IdempotencyKey})
	})
}

func (src *reportSource) Anomalies(ctx context.Context, fn func(reports.AnomalyRow) error) error {
	return src.s.Anomalies(ctx, src.runIDs, func(a Anomaly) error {
		var at time.Time
		if a.OccurredAt != nil {
			at = *a.OccurredAt
		}
		return fn(reports.AnomalyRow{UsageEventID: a.UsageEventID, Reason: a.Reason, UserID: a.UserID, Product: a.Product,
			TemplateID: a.TemplateID, AmountUSD: a.AmountUSD, OccurredAt: at})
	})
}
