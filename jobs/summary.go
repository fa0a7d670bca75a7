package jobs

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/runpod/creditrecon/reconcile"
	"github.com/runpod/creditrecon/reports"
)

// The summary page (summary.html) of a report set: a 90-day trend, the top 20 beneficiaries and
// the 20 accounts closest to a threshold.
const (
	summaryTrendDays = 90
	summaryRows      = 20
)

// LedgerQuery selects what the summary page reads from the ledger.
type LedgerQuery struct {
	AsOf  time.Time // the cutoff
	Since time.Time // the trend counts grants with Since < as_of <= AsOf
	Top   int       // how many beneficiaries
}

// LedgerSummary is what the summary page shows of the ledger as of a cutoff.
type LedgerSummary struct {
	Daily []CutoffGrants   // in cutoff, then program order
	Top   []TopBeneficiary // granted the most first
}

// CutoffGrants adds up the grants of one cutoff, program and payout.
type CutoffGrants struct {
	AsOf    time.Time       `db:"as_of"`
	Program string          `db:"program"`
	Payout  string          `db:"payout"`
	Grants  int64           `db:"grants"`
	Amount  decimal.Decimal `db:"amount_usd"`
}

// TopBeneficiary is a beneficiary's grants as of a cutoff, all programs.
type TopBeneficiary struct {
	BeneficiaryID string
	Programs      []string
	Grants        int64
	GrantedToDate decimal.Decimal // as_of <= the cutoff
	GrantedAsOf   decimal.Decimal // as_of = the cutoff
}

// summaryTally adds up, while reportSource streams the accounts, what the summary page shows of
// them: each program's liability and the accounts closest to a threshold.
type summaryTally struct {
	liability  map[string]reports.Liability
	pipeline   []reports.PipelineAccount // the closest summaryRows, closest first
	candidates int64
}

// whole is a progress of 100%.
var whole = decimal.NewFromInt(1)

// tallyReferrer tallies a Referral Program account.
func (src *reportSource) tallyReferrer(t reconcile.ReferrerTotals, d reconcile.Decision) {
	v, _ := src.terms.ReferralVersion(t.TermsID)
	src.sum.account(d, v.Cap)
	if d.Status != reconcile.StatusAccrued {
		return
	}
	progress := whole
	if v.MinReferrals > 0 {
		progress = share(decimal.NewFromInt(t.Referrals), decimal.NewFromInt(v.MinReferrals), progress)
	}
	if v.MinSpend.IsPositive() {
		progress = share(d.Spend, v.MinSpend, progress)
	}
	src.sum.candidate(reports.PipelineAccount{Program: string(reconcile.Referral), TermsID: t.TermsID, AccountID: t.ReferrerID,
		BeneficiaryID: d.BeneficiaryID, Progress: progress, DueUSD: accrued(d, v.Cap), Missing: d.Reason})
}

// tallyTemplate tallies a Template Program account.
func (src *reportSource) tallyTemplate(t reconcile.TemplateTotals, d reconcile.Decision) {
	v, _ := src.terms.TemplateVersion(t.TermsID)
	src.sum.account(d, v.Cap)
	if d.Status != reconcile.StatusAccrued {
		return
	}
	progress := whole
	if v.MinRuntimeSeconds > 0 {
		progress = share(decimal.NewFromInt(t.RuntimeSeconds), decimal.NewFromInt(v.MinRuntimeSeconds), progress)
	}
	src.sum.candidate(reports.PipelineAccount{Program: string(reconcile.Template), TermsID: t.TermsID, AccountID: t.TemplateID,
		BeneficiaryID: d.BeneficiaryID, Progress: progress, DueUSD: accrued(d, v.Cap), Missing: d.Reason})
}

// tallyServerless tallies a referral's two Serverless Referral Program accounts. A pending
// referral (spend under the threshold, nothing paid) is in the pipeline as its referred user's,
// with its referrer as beneficiary and both bonuses due when it reaches the threshold.
func (src *reportSource) tallyServerless(t reconcile.ServerlessTotals, ds [2]reconcile.Decision) {
	v, _ := src.terms.ServerlessVersion(t.TermsID)
	src.tallyPair(ds, t.Spend, v.Threshold, func() decimal.Decimal {
		return decimal.Max(v.ReferrerBonus.Sub(t.GrantedReferrer), decimal.Zero).Add(decimal.Max(v.ReferredBonus.Sub(t.GrantedReferred), decimal.Zero))
	})
}

// tallySignup tallies a referral's two signup bonus accounts. A pending referral (loads under the
// minimum, nothing paid) is in the pipeline as its referred user's, with its referrer as
// beneficiary and both bonuses due when the loads reach the minimum.
func (src *reportSource) tallySignup(t reconcile.SignupTotals, ds [2]reconcile.Decision) {
	v, _ := src.terms.SignupVersion(t.TermsID)
	src.tallyPair(ds, t.Loads, v.MinLoad, func() decimal.Decimal {
		var due decimal.Decimal
		for _, d := range ds {
			if b := d.Bonus; b != nil && b.Drawn != nil {
				due = due.Add(b.Drawn.USD)
			} else {
				due = due.Add(v.Fixed)
			}
		}
		return due
	})
}

// tallyPair tallies the two role accounts of a referral's one-time bonus (referrer first), and
// puts a pending referral in the pipeline with its progress have/need toward the threshold and
// what would be due on reaching it.
func (src *reportSource) tallyPair(ds [2]reconcile.Decision, have, need decimal.Decimal, due func() decimal.Decimal) {
	src.sum.account(ds[0], nil)
	src.sum.account(ds[1], nil)
	if ds[0].Status != reconcile.StatusPending {
		return
	}
	progress := whole
	if need.IsPositive() {
		progress = share(have, need, progress)
	}
	src.sum.candidate(reports.PipelineAccount{Program: string(ds[0].Program), TermsID: ds[0].TermsID, AccountID: ds[0].AccountID,
		BeneficiaryID: ds[0].BeneficiaryID, Progress: progress, DueUSD: due(), Missing: ds[0].Reason})
}

// share returns the smaller of limit and have/need (need > 0), at least 0.
func share(have, need, limit decimal.Decimal) decimal.Decimal {
	s := decimal.Max(have, decimal.Zero).DivRound(need, 6)
	return decimal.Min(s, limit)
}

// accrued is what an account not eligible yet has earned beyond what it was granted: the target
// it would have if it were eligible (whole cents, never negative, up to its cap) less granted.
func accrued(d reconcile.Decision, cap *decimal.Decimal) decimal.Decimal {
	supported := decimal.Max(reconcile.FloorToCent(d.Earned), decimal.Zero)
	if cap != nil && supported.GreaterThan(*cap) {
		supported = *cap
	}
	return decimal.Max(supported.Sub(d.Granted), decimal.Zero)
}

// account adds a decision to its program's liability: accrued when the account is not eligible
// (and its program version pays), waiting and clawback due as the decision says.
func (s *summaryTally) account(d reconcile.Decision, cap *decimal.Decimal) {
	if s.liability == nil {
		s.liability = noLiability()
	}
	l := s.liability[string(d.Program)]
	if d.Program != reconcile.ServerlessReferral && !d.Eligible && d.Status != reconcile.StatusDisabled {
		if a := accrued(d, cap); a.IsPositive() {
			l.AccruedUSD, l.AccruedAccounts = l.AccruedUSD.Add(a), l.AccruedAccounts+1
		}
	}
	if d.Waiting.IsPositive() {
		l.WaitingUSD, l.WaitingAccounts = l.WaitingUSD.Add(d.Waiting), l.WaitingAccounts+1
	}
	if d.ClawbackDue.IsPositive() {
		l.ClawbackDueUSD, l.ClawbackAccounts = l.ClawbackDueUSD.Add(d.ClawbackDue), l.ClawbackAccounts+1
	}
	s.liability[string(d.Program)] = l
}

// noLiability is every program's liability, all zeros.
func noLiability() map[string]reports.Liability {
	l := map[string]reports.Liability{}
	for _, p := range reconcile.Programs {
		l[string(p)] = reports.Liability{}
	}
	return l
}

// candidate keeps an account in the pipeline if it is among the closest summaryRows.
func (s *summaryTally) candidate(a reports.PipelineAccount) {
	s.candidates++
	i, _ := slices.BinarySearchFunc(s.pipeline, a, closer)
	if i >= summaryRows {
		return
	}
	s.pipeline = slices.Insert(s.pipeline, i, a)
	if len(s.pipeline) > summaryRows {
		s.pipeline = s.pipeline[:summaryRows]
	}
}

// closer orders the pipeline: most progress first, then the most due, then by program, account
// and version, so that the order is total.
func closer(a, b reports.PipelineAccount) int {
	return cmp.Or(b.Progress.Cmp(a.Progress), b.DueUSD.Cmp(a.DueUSD), strings.Compare(a.Program, b.Program),
		strings.Compare(a.AccountID, b.AccountID), strings.Compare(a.TermsID, b.TermsID))
}

// summary completes what the accounts gave with the ledger's trend and top beneficiaries, read
// in the report's snapshot, and the terms versions.
func (src *reportSource) summary(ctx context.Context) (reports.Summary, error) {
	loc := src.asOf.Location()
	led, err := src.s.LedgerSummary(ctx, LedgerQuery{AsOf: src.asOf, Since: src.asOf.AddDate(0, 0, -summaryTrendDays), Top: summaryRows})
	if err != nil {
		return reports.Summary{}, err
	}
	out := reports.Summary{Pipeline: src.sum.pipeline, PipelineAccounts: src.sum.candidates, Liability: src.sum.liability}
	if out.Liability == nil {
		out.Liability = noLiability()
	}
	for i := summaryTrendDays - 1; i >= 0; i-- {
		out.Days = append(out.Days, BusinessDate(src.asOf.AddDate(0, 0, -i), loc))
	}
	// Cutoffs at other times than midnight can close the same business date: add them up.
	for _, c := range led.Daily {
		date := BusinessDate(c.AsOf, loc)
		i := slices.IndexFunc(out.Daily, func(d reports.DailyGranted) bool {
			return d.Date == date && d.Program == c.Program && d.Payout == c.Payout
		})
		if i < 0 {
			out.Daily = append(out.Daily, reports.DailyGranted{Date: date, Program: c.Program, Payout: c.Payout})
			i = len(out.Daily) - 1
		}
		out.Daily[i].Grants += c.Grants
		out.Daily[i].AmountUSD = out.Daily[i].AmountUSD.Add(c.Amount)
	}
	for _, b := range led.Top {
		out.Top = append(out.Top, reports.Beneficiary{BeneficiaryID: b.BeneficiaryID, Programs: b.Programs, Grants: b.Grants,
			GrantedToDateUSD: b.GrantedToDate, GrantedAsOfUSD: b.GrantedAsOf})
	}
	add := func(p reconcile.Program, v reconcile.Version) {
		out.Terms = append(out.Terms, reports.TermsVersion{Program: string(p), ID: v.ID, From: v.From, Enabled: v.Enabled})
	}
	for _, v := range src.terms.Referral {
		add(reconcile.Referral, v.Version)
	}
	for _, v := range src.terms.Template {
		add(reconcile.Template, v.Version)
	}
	for _, v := range src.terms.Serverless {
		add(reconcile.ServerlessReferral, v.Version)
	}
	return out, nil
}
