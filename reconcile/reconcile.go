// Package reconcile is the pure core of creditrecon: the rules of the three credit programs.
//
// Every program keeps accounts (SPEC 2): one per referrer in the Referral Program, one per
// template in the Template Program, and two per referral (the referrer's bonus and the referred
// user's) in the Serverless Referral Program. Given an account's aggregates as of a cutoff T
// (spend and runtime computed in SQL from usage with occurred_at < T) and the sum of its existing
// grants, Evaluate* returns a Decision:
//
//	target = FloorToCent(earned)  if the account is eligible at T, else 0
//	owed   = target - granted
//
// and a run writes one grant of owed when owed > 0. An account's total granted is therefore the
// largest target any run computed: sub-cent remainders carry into later runs, any split of the
// same usage into runs grants the same total, and re-running a cutoff writes nothing.
//
// The package does no I/O and never reads the clock: the cutoff is an argument.
package reconcile

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Program names a credit program, as stored in credit_grants.program.
type Program string

// The three programs of SPEC 2.
const (
	Referral           Program = "referral"
	Template           Program = "template"
	ServerlessReferral Program = "serverless_referral"
)

// Programs lists every program in report order.
var Programs = []Program{Referral, Template, ServerlessReferral}

// Serverless bonus roles: each referral has one account per role.
const (
	RoleReferrer = "referrer"
	RoleReferred = "referred"
)

// Status of an account as of a cutoff, as reported in referrers.csv and templates.csv.
const (
	StatusGranted  = "granted"  // eligible, and everything owed is granted (or being granted)
	StatusAccrued  = "accrued"  // earning, but not eligible yet: nothing is granted
	StatusClawback = "clawback" // granted more than the current target: clawback_due > 0
	StatusDisabled = "disabled" // the program is disabled in this run's parameters
	StatusRefunded = "refunded" // serverless bonus paid, but refunds took the spend back under the threshold
	StatusPending  = "pending"  // serverless: threshold not reached
)

var hundred = decimal.NewFromInt(100)

// FloorToCent rounds d down to whole cents (towards negative infinity). It is the only rounding
// the programs use: remainders are never paid early, they carry into later runs.
func FloorToCent(d decimal.Decimal) decimal.Decimal {
	return d.Mul(hundred).Floor().Div(hundred).Truncate(2)
}

// ReferrerTotals are a referrer's aggregates as of a cutoff.
type ReferrerTotals struct {
	ReferrerID string
	Referrals  int64           // referrals with referred_at < T, self-referrals excluded
	Spend      decimal.Decimal // referral_spend(r, T)
	Accepted   bool            // an acceptance is recorded when the run executes
	Granted    decimal.Decimal // sum of the account's grants, whatever their cutoff

	UsageRows   int64           // usage rows in Spend
	GrantedAsOf decimal.Decimal // grants with as_of <= T: what the reports of T show
}

// TemplateTotals are a template's aggregates as of a cutoff.
type TemplateTotals struct {
	TemplateID     string
	CreatorID      string
	RuntimeSeconds int64
	Spend          decimal.Decimal // template_spend(t, T)
	Granted        decimal.Decimal

	UsageRows   int64
	GrantedAsOf decimal.Decimal
}

// ServerlessTotals are a referral's serverless aggregates as of a cutoff.
type ServerlessTotals struct {
	ReferredUserID  string
	ReferrerID      string
	Spend           decimal.Decimal // serverless_spend(u, T)
	GrantedReferrer decimal.Decimal
	GrantedReferred decimal.Decimal

	UsageRows           int64
	GrantedReferrerAsOf decimal.Decimal
	GrantedReferredAsOf decimal.Decimal
}

// Decision is what the rules say about one account as of a cutoff.
type Decision struct {
	Program       Program
	AccountID     string // referrer id, template id, or the referred user id for a serverless role
	BeneficiaryID string
	TemplateID    string // template accounts
	ReferredUser  string // serverless accounts
	Role          string // serverless accounts: RoleReferrer or RoleReferred

	Spend       decimal.Decimal
	Earned      decimal.Decimal // exact, before rounding
	Eligible    bool
	Status      string
	Reason      string // why not eligible, or what the status means
	Target      decimal.Decimal
	Granted     decimal.Decimal
	Owed        decimal.Decimal // > 0: a grant is due
	ClawbackDue decimal.Decimal // granted beyond the target; never granted back
}

// EvaluateReferrer applies the Referral Program (SPEC 2.2) to a referrer. Earnings made before
// the referrer became eligible are kept: once eligible, the target is the whole earned amount.
func (p Params) EvaluateReferrer(t ReferrerTotals) Decision {
	rp := p.Referral
	d := Decision{
		Program: Referral, AccountID: t.ReferrerID, BeneficiaryID: t.ReferrerID,
		Spend: t.Spend, Earned: t.Spend.Mul(rp.Rate), Granted: t.Granted,
	}
	if !rp.Enabled {
		return disabled(d)
	}
	var unmet []string
	if t.Referrals < rp.MinReferrals {
		unmet = append(unmet, fmt.Sprintf("%d referrals, needs %d", t.Referrals, rp.MinReferrals))
	}
	if t.Spend.LessThan(rp.MinSpend) {
		unmet = append(unmet, fmt.Sprintf("referral spend %s, needs %s", t.Spend.StringFixed(2), rp.MinSpend.StringFixed(2)))
	}
	if !t.Accepted {
		unmet = append(unmet, "not accepted into the program")
	}
	return settle(d, unmet)
}

// EvaluateTemplate applies the Template Program (SPEC 2.3) to a template; its creator is paid.
func (p Params) EvaluateTemplate(t TemplateTotals) Decision {
	tp := p.Template
	d := Decision{
		Program: Template, AccountID: t.TemplateID, BeneficiaryID: t.CreatorID, TemplateID: t.TemplateID,
		Spend: t.Spend, Earned: t.Spend.Mul(tp.Rate), Granted: t.Granted,
	}
	if !tp.Enabled {
		return disabled(d)
	}
	var unmet []string
	if t.RuntimeSeconds < tp.MinRuntimeSeconds {
		unmet = append(unmet, fmt.Sprintf("%d runtime seconds, needs %d", t.RuntimeSeconds, tp.MinRuntimeSeconds))
	}
	return settle(d, unmet)
}

// settle sets the target from eligibility (no unmet condition), then owed, clawback_due and the
// status. A negative earned amount (refunds beyond spend) targets zero: grants are never negative.
// Clawback measures earnings lost to refunds, granted - FloorToCent(earned), whether or not the
// account is still eligible: losing eligibility stops new grants but does not make the earnings
// already paid "due back".
func settle(d Decision, unmet []string) Decision {
	d.Eligible = len(unmet) == 0
	d.Reason = strings.Join(unmet, "; ")
	floor := decimal.Max(FloorToCent(d.Earned), decimal.Zero)
	if d.Eligible {
		d.Target = floor
	}
	if d.Target.GreaterThan(d.Granted) {
		d.Owed = d.Target.Sub(d.Granted)
	}
	if d.Granted.GreaterThan(floor) {
		d.ClawbackDue = d.Granted.Sub(floor)
	}
	switch {
	case d.ClawbackDue.IsPositive():
		d.Status = StatusClawback
		if d.Reason == "" {
			d.Reason = "refunds reduced earnings below what was granted"
		}
	case d.Eligible:
		d.Status = StatusGranted
	default:
		d.Status = StatusAccrued
	}
	return d
}

// disabled is the decision for a program switched off: nothing is owed and nothing is clawed back.
func disabled(d Decision) Decision {
	d.Status, d.Reason = StatusDisabled, "program disabled"
	return d
}

// EvaluateServerless applies the Serverless Referral Program (SPEC 2.1) to a referral: the
// referrer's bonus and the referred user's bonus. Each is granted once, ever; a later refund
// does not revoke it (the status says "refunded", and no clawback is due).
func (p Params) EvaluateServerless(t ServerlessTotals) [2]Decision {
	sp := p.Serverless
	reached := sp.Enabled && t.Spend.GreaterThanOrEqual(sp.Threshold)
	role := func(role, beneficiary string, bonus, granted decimal.Decimal) Decision {
		d := Decision{
			Program: ServerlessReferral, AccountID: t.ReferredUserID, BeneficiaryID: beneficiary,
			ReferredUser: t.ReferredUserID, Role: role,
			Spend: t.Spend, Granted: granted, Eligible: reached,
		}
		if reached {
			d.Earned, d.Target = bonus, bonus
		}
		if d.Granted.LessThan(d.Target) {
			d.Owed = d.Target.Sub(d.Granted)
		}
		switch {
		case !sp.Enabled:
			d.Status, d.Reason = StatusDisabled, "program disabled"
		case reached:
			d.Status = StatusGranted
		case granted.IsPositive():
			d.Status, d.Reason = StatusRefunded, "bonus paid; refunds took serverless spend under the threshold"
		default:
			d.Status = StatusPending
			d.Reason = fmt.Sprintf("serverless spend %s, needs %s", t.Spend.StringFixed(2), sp.Threshold.StringFixed(2))
		}
		return d
	}
	return [2]Decision{
		role(RoleReferrer, t.ReferrerID, sp.ReferrerBonus, t.GrantedReferrer),
		role(RoleReferred, t.ReferredUserID, sp.ReferredBonus, t.GrantedReferred),
	}
}

// Grant is one credit grant to write.
type Grant struct {
	IdempotencyKey string
	Program        Program
	AccountID      string
	BeneficiaryID  string
	TemplateID     string
	ReferredUser   string
	Role           string
	Amount         decimal.Decimal // whole cents, > 0
	GrantedBefore  decimal.Decimal // the account's total before this grant
	Spend          decimal.Decimal // the spend that earned it, as of the cutoff
	Earned         decimal.Decimal
	AsOf           time.Time
}

// Grant returns the grant the decision owes as of cutoff asOf, and false when nothing is owed.
func (d Decision) Grant(asOf time.Time) (Grant, bool) {
	if !d.Owed.IsPositive() {
		return Grant{}, false
	}
	return Grant{
		IdempotencyKey: IdempotencyKey(d.Program, d.AccountID, d.Role, d.Granted),
		Program:        d.Program,
		AccountID:      d.AccountID,
		BeneficiaryID:  d.BeneficiaryID,
		TemplateID:     d.TemplateID,
		ReferredUser:   d.ReferredUser,
		Role:           d.Role,
		Amount:         d.Owed,
		GrantedBefore:  d.Granted,
		Spend:          d.Spend,
		Earned:         d.Earned,
		AsOf:           asOf,
	}, true
}

// IdempotencyKey names a grant by its program, its account and the cumulative amount granted to
// the account before it. Two writers that start from the same state compute the same key, so the
// unique constraint on credit_grants.idempotency_key lets only one of them write; a writer that
// starts from a stale state collides with the grant that moved the account past it.
// Serverless accounts are per referral and role. The account ID is query-escaped, so keys stay
// unambiguous whatever characters an ID contains.
//
//	referral:alice:40.00   template:tpl%2C1:0.00   serverless_referral:bob/referrer:0.00
func IdempotencyKey(p Program, accountID, role string, grantedBefore decimal.Decimal) string {
	account := url.QueryEscape(accountID)
	if role != "" {
		account += "/" + role
	}
	return fmt.Sprintf("%s:%s:%s", p, account, grantedBefore.StringFixed(2))
}
