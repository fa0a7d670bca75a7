package reconcile

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/shopspring/decimal"
)

// SeedTermsID is the id of the built-in terms' one version per program, and the version of every
// grant written before terms existed.
const SeedTermsID = "seed"

// Terms are the programs' terms as versioned data (SPEC 7): per program, versions in increasing
// From, each binding the relationships that start from its From until the next version's. Package
// terms parses them from a file; Params.Terms builds the built-in ones.
type Terms struct {
	// HoldingDays: usage counts only once it is this many days old (all programs).
	HoldingDays int `json:"holding_days"`
	// MinGrant: a grant is written only when owed reaches it; smaller amounts carry.
	MinGrant   decimal.Decimal     `json:"min_grant_usd"`
	Referral   []ReferralVersion   `json:"referral"`
	Template   []TemplateVersion   `json:"template"`
	Serverless []ServerlessVersion `json:"serverless_referral"`
	// Signup are the versions of the signup bonus (SPEC 8.1); none in the built-in terms.
	Signup []SignupVersion `json:"signup_bonus,omitempty"`
}

// Version is what every program version has.
type Version struct {
	ID string `json:"id"`
	// From is the first start (referred_at, created_at) the version binds; zero on a first
	// version means since forever.
	From    time.Time `json:"from,omitzero"`
	Enabled bool      `json:"enabled"`
	// Payout is how the version's grants are paid: PayoutCash, or "" for credits (the default).
	Payout string `json:"payout,omitempty"`
}

// Payouts of a version (SPEC 8.2): credits on the user's account, or cash that finance pays.
const (
	PayoutCredits = "credits"
	PayoutCash    = "cash"
)

// PayoutOf returns the payout of a version: PayoutCash or PayoutCredits.
func (v Version) PayoutOf() string {
	if v.Payout == PayoutCash {
		return PayoutCash
	}
	return PayoutCredits
}

func (v Version) version() Version { return v }

// RatePeriod is a rate table in force for usage with occurred_at from From (zero: since forever)
// until the next period's From.
type RatePeriod struct {
	From time.Time `json:"from,omitzero"`
	// Rates maps a product to its rate; AnyProduct is the rate of every product not listed.
	// A product with no rate earns nothing and does not count toward thresholds.
	Rates map[string]decimal.Decimal `json:"rates"`
}

// AnyProduct is the rate key for every product a rate period does not list.
const AnyProduct = "*"

// Rate returns the rate of product in the period, and false when the product has none.
func (p RatePeriod) Rate(product string) (decimal.Decimal, bool) {
	if r, ok := p.Rates[product]; ok {
		return r, true
	}
	r, ok := p.Rates[AnyProduct]
	return r, ok
}

// Window bounds how long after a referral its usage counts: usage with
// referred_at <= occurred_at < End(referred_at). The zero Window is lifetime.
type Window struct {
	Months int `json:"months,omitempty"`
	Days   int `json:"days,omitempty"`
}

// Lifetime reports whether the window never ends.
func (w Window) Lifetime() bool { return w.Months == 0 && w.Days == 0 }

// End returns the end of the window that starts at start (UTC): Months calendar months as
// PostgreSQL's interval 'N months' adds them (31 January + 1 month = 28 or 29 February), or Days
// × 24 hours. A lifetime window has no end: ok is false.
func (w Window) End(start time.Time) (end time.Time, ok bool) {
	if w.Lifetime() {
		return time.Time{}, false
	}
	if w.Days > 0 {
		return start.Add(time.Duration(w.Days) * 24 * time.Hour), true
	}
	return AddMonths(start, w.Months), true
}

// String returns the window as the terms file writes it: lifetime, 6mo or 180d.
func (w Window) String() string {
	switch {
	case w.Lifetime():
		return "lifetime"
	case w.Days > 0:
		return fmt.Sprintf("%dd", w.Days)
	default:
		return fmt.Sprintf("%dmo", w.Months)
	}
}

// AddMonths adds n calendar months to t in UTC the way PostgreSQL adds interval 'n months': the
// day of the month is kept, or clamped to the last day of a shorter month.
func AddMonths(t time.Time, n int) time.Time {
	t = t.UTC()
	y, m, d := t.Date()
	total := int(m) - 1 + n
	y += total / 12
	if total%12 < 0 {
		y--
	}
	month := time.Month((total%12+12)%12 + 1)
	last := time.Date(y, month+1, 0, 0, 0, 0, 0, time.UTC).Day()
	return time.Date(y, month, min(d, last), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

// ReferralVersion is a version of the Referral Program (SPEC 2.2, 7.2).
type ReferralVersion struct {
	Version
	Rates              []RatePeriod    `json:"rates"`
	Window             Window          `json:"window"`
	MinReferrals       int64           `json:"min_referrals"`
	MinSpend           decimal.Decimal `json:"min_spend_usd"`
	RequiresAcceptance bool            `json:"requires_acceptance"`
	// MaxAccountAge, when set, admits only referrals whose referred user was created at most
	// this long before referred_at (new accounts only).
	MaxAccountAge *time.Duration `json:"max_account_age,omitempty"`
	// Cap, when set, is the most one account can ever be granted.
	Cap *decimal.Decimal `json:"cap_usd,omitempty"`
	// Tier marks a partner tier (SPEC 8.2): it has no From and binds no referral by date, only
	// the referrers enrolled into it, from their enrollment date; its thresholds are zero.
	Tier bool `json:"tier,omitempty"`
}

// TemplateVersion is a version of the Template Program (SPEC 2.3, 7.2). Each rate period has one
// rate, under AnyProduct, for every product in Products.
type TemplateVersion struct {
	Version
	Products          []string         `json:"products"`
	Rates             []RatePeriod     `json:"rates"`
	MinRuntimeSeconds int64            `json:"min_runtime_seconds"`
	Cap               *decimal.Decimal `json:"cap_usd,omitempty"`
}

// ServerlessVersion is a version of the Serverless Referral Program (SPEC 2.1, 7.2).
type ServerlessVersion struct {
	Version
	Products      []string        `json:"products"`
	Window        Window          `json:"window"`
	MaxAccountAge *time.Duration  `json:"max_account_age,omitempty"`
	Threshold     decimal.Decimal `json:"threshold_usd"`
	ReferrerBonus decimal.Decimal `json:"referrer_bonus_usd"`
	ReferredBonus decimal.Decimal `json:"referred_bonus_usd"`
	// UsageFrom, when set, counts only usage from this date: the built-in terms' program start
	// (--serverless-start). A terms file has no such key.
	UsageFrom time.Time `json:"usage_from,omitzero"`
}

// SignupVersion is a version of the signup bonus (SPEC 8.1): once the referred user's loads since
// the referral reach MinLoad, the referrer and the referred user are each owed one bonus, fixed
// or drawn by the recipient's country.
type SignupVersion struct {
	Version
	MaxAccountAge *time.Duration  `json:"max_account_age,omitempty"`
	MinLoad       decimal.Decimal `json:"min_load_usd"`
	Fixed         decimal.Decimal `json:"fixed_usd"`
	// FixedCountries are the ISO 3166-1 alpha-2 codes (upper case) whose recipients get Fixed.
	FixedCountries []string    `json:"fixed_countries"`
	Draw           []DrawEntry `json:"draw"`
	// UnknownCountry is what a recipient with a null or unknown country gets: UnknownFixed (the
	// default) or UnknownDraw.
	UnknownCountry string `json:"unknown_country"`
}

// What a recipient of unknown country gets.
const (
	UnknownFixed = "fixed"
	UnknownDraw  = "draw"
)

// DrawEntry is one amount of a weighted draw table.
type DrawEntry struct {
	USD    decimal.Decimal `json:"usd"`
	Weight int64           `json:"weight"`
}

// VersionRecord is one version as the ledger records it: its program, id, start, canonical
// content (JSON) and that content's SHA-256.
type VersionRecord struct {
	Program Program
	ID      string
	From    time.Time // zero: since forever
	Content []byte
	SHA256  string
}

// Records returns every version of every program with its canonical content, in program then
// file order.
func (t Terms) Records() []VersionRecord {
	var out []VersionRecord
	add := func(p Program, v Version, full any) {
		b, err := json.Marshal(full)
		if err != nil {
			panic(fmt.Sprintf("encode terms version %s/%s: %v", p, v.ID, err)) // plain data: cannot fail
		}
		sum := sha256.Sum256(b)
		out = append(out, VersionRecord{Program: p, ID: v.ID, From: v.From, Content: b, SHA256: hex.EncodeToString(sum[:])})
	}
	for _, v := range t.Referral {
		add(Referral, v.Version, v)
	}
	for _, v := range t.Template {
		add(Template, v.Version, v)
	}
	for _, v := range t.Serverless {
		add(ServerlessReferral, v.Version, v)
	}
	for _, v := range t.Signup {
		add(SignupBonus, v.Version, v)
	}
	return out
}

// Equal reports whether two terms are the same, version for version.
func (t Terms) Equal(o Terms) bool {
	a, b := t.Records(), o.Records()
	return t.HoldingDays == o.HoldingDays && t.MinGrant.Equal(o.MinGrant) &&
		slices.EqualFunc(a, b, func(x, y VersionRecord) bool { return x.Program == y.Program && x.SHA256 == y.SHA256 })
}
