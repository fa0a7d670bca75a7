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
	"cmp"
	"fmt"
	"net/url"
	"time"

	"github.com/shopspring/decimal"
)

// Program names a credit program, as stored in credit_grants.program.
type Program string

// The three programs of SPEC 2, and the signup bonus of SPEC 8.1.
const (
	Referral           Program = "referral"
	Template           Program = "template"
	ServerlessReferral Program = "serverless_referral"
	SignupBonus        Program = "signup_bonus"
)

// Programs lists every program in report order.
var Programs = []Program{Referral, Template, ServerlessReferral, SignupBonus}

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
	StatusCapped   = "capped"   // eligible, and the target is the version's cap_usd
)

// FloorToCent rounds d down to whole cents (towards negative infinity). It is the only rounding
// the programs use: remainders are never paid early, they carry into later runs.
func FloorToCent(d decimal.Decimal) decimal.Decimal {
	return d.RoundFloor(2)
}

// ReferrerTotals are a referrer's aggregates as of a cutoff.
type ReferrerTotals struct {
	ReferrerID string
	TermsID    string          // the version the referrals bind to; "" when they bind to none
	Referrals  int64           // referrals with referred_at < T bound to the version, self-referrals and not-new accounts excluded
	NotNew     int64           // referrals bound to the version excluded as not new accounts (max_account_age)
	Spend      decimal.Decimal // referral_spend(r, T): the usage that earns
	Earned     decimal.Decimal // exact sum of the usage times its rate (Terms.EvaluateReferrer)
	Accepted   bool            // an acceptance is recorded when the run executes
	Granted    decimal.Decimal // sum of the account's grants, whatever their cutoff

	UsageRows   int64           // usage rows in Spend
	GrantedAsOf decimal.Decimal // grants with as_of <= T: what the reports of T show
}

// TemplateTotals are a template's aggregates as of a cutoff.
type TemplateTotals struct {
	TemplateID     string
	TermsID        string // the version the template binds to by its created_at
	CreatorID      string
	RuntimeSeconds int64
	Spend          decimal.Decimal // template_spend(t, T)
	Earned         decimal.Decimal // exact sum of the usage times its rate (Terms.EvaluateTemplate)
	Granted        decimal.Decimal

	UsageRows   int64
	GrantedAsOf decimal.Decimal
}

// ServerlessTotals are a referral's serverless aggregates as of a cutoff.
type ServerlessTotals struct {
	ReferredUserID  string
	TermsID         string // the version the referral binds to; "" when none
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
	TermsID       string // the version of the account
	Payout        string // PayoutCredits or PayoutCash, the version's
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
	// Waiting is owed but under the terms' minimum grant: it carries until owed reaches it.
	Waiting decimal.Decimal
	// Bonus is how a signup bonus's amount was chosen; nil for the other programs.
	Bonus *Bonus
}

// EvaluateReferrer applies the Referral Program (SPEC 2.2) of the built-in terms to a referrer:
// earned is the spend times the rate.
func (p Params) EvaluateReferrer(t ReferrerTotals) Decision {
	t.TermsID, t.Earned = SeedTermsID, t.Spend.Mul(p.Referral.Rate)
	return p.Terms().EvaluateReferrer(t)
}

// EvaluateTemplate applies the Template Program (SPEC 2.3) of the built-in terms to a template.
func (p Params) EvaluateTemplate(t TemplateTotals) Decision {
	t.TermsID, t.Earned = SeedTermsID, t.Spend.Mul(p.Template.Rate)
	return p.Terms().EvaluateTemplate(t)
}

// EvaluateServerless applies the Serverless Referral Program (SPEC 2.1) of the built-in terms to
// a referral.
func (p Params) EvaluateServerless(t ServerlessTotals) [2]Decision {
	t.TermsID = SeedTermsID
	return p.Terms().EvaluateServerless(t)
}

// Grant is one credit grant to write.
type Grant struct {
	IdempotencyKey string
	Program        Program
	TermsID        string
	Payout         string // PayoutCredits or PayoutCash
	Bonus          *Bonus // a signup bonus: fixed, or drawn (u and the entry)
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
		IdempotencyKey: VersionedIdempotencyKey(d.Program, d.TermsID, d.AccountID, d.Role, d.Granted),
		Program:        d.Program,
		TermsID:        d.TermsID,
		Payout:         cmp.Or(d.Payout, PayoutCredits),
		Bonus:          d.Bonus,
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

// VersionedIdempotencyKey is IdempotencyKey for an account of a terms version: the version
// follows the program, except for version seed, whose keys are those of grants written before
// terms existed, so that an existing ledger continues its chains.
//
//	referral:alice:40.00   referral@runpod-2025-06:alice:0.00
func VersionedIdempotencyKey(p Program, termsID, accountID, role string, grantedBefore decimal.Decimal) string {
	if termsID == SeedTermsID {
		return IdempotencyKey(p, accountID, role, grantedBefore)
	}
	return IdempotencyKey(Program(string(p)+"@"+termsID), accountID, role, grantedBefore)
}
