package reconcile

import (
	"errors"
	"fmt"
	"time"

	"github.com/shopspring/decimal"
)

// Params are the program parameters a run uses. They are recorded with every run and in every
// report manifest. DefaultParams returns the seed document's values.
type Params struct {
	Referral   ReferralParams   `json:"referral"`
	Template   TemplateParams   `json:"template"`
	Serverless ServerlessParams `json:"serverless_referral"`
}

// ReferralParams parameterise the Referral Program (SPEC 2.2).
type ReferralParams struct {
	Enabled      bool            `json:"enabled"`
	Rate         decimal.Decimal `json:"rate"`
	MinReferrals int64           `json:"min_referrals"`
	MinSpend     decimal.Decimal `json:"min_spend_usd"`
	// Start is the program start: usage before it earns nothing. Zero means no start date.
	Start time.Time `json:"start,omitzero"`
}

// TemplateParams parameterise the Template Program (SPEC 2.3).
type TemplateParams struct {
	Enabled           bool            `json:"enabled"`
	Rate              decimal.Decimal `json:"rate"`
	MinRuntimeSeconds int64           `json:"min_runtime_seconds"`
	Start             time.Time       `json:"start,omitzero"`
}

// ServerlessParams parameterise the Serverless Referral Program (SPEC 2.1).
type ServerlessParams struct {
	Enabled       bool            `json:"enabled"`
	Threshold     decimal.Decimal `json:"threshold_usd"`
	ReferrerBonus decimal.Decimal `json:"referrer_bonus_usd"`
	ReferredBonus decimal.Decimal `json:"referred_bonus_usd"`
	Start         time.Time       `json:"start,omitzero"`
}

// DefaultParams returns the parameters of the seed document: 2% referral commission from 25
// referrals and $500 of referral spend, 1% template commission from one day of runtime, and a
// $500 + $500 serverless bonus at $1,000 of serverless spend.
func DefaultParams() Params {
	return Params{
		Referral: ReferralParams{
			Enabled:      true,
			Rate:         decimal.RequireFromString("0.02"),
			MinReferrals: 25,
			MinSpend:     decimal.RequireFromString("500.00"),
		},
		Template: TemplateParams{
			Enabled:           true,
			Rate:              decimal.RequireFromString("0.01"),
			MinRuntimeSeconds: 86400,
		},
		Serverless: ServerlessParams{
			Enabled:       true,
			Threshold:     decimal.RequireFromString("1000.00"),
			ReferrerBonus: decimal.RequireFromString("500.00"),
			ReferredBonus: decimal.RequireFromString("500.00"),
		},
	}
}

// Terms returns the built-in terms of the parameters: one version with id seed per program,
// whose single rate period starts at the program start.
func (p Params) Terms() Terms {
	return Terms{
		MinGrant: decimal.RequireFromString("0.01"),
		Referral: []ReferralVersion{{
			Version:            Version{ID: SeedTermsID, Enabled: p.Referral.Enabled},
			Rates:              []RatePeriod{{From: utc(p.Referral.Start), Rates: map[string]decimal.Decimal{AnyProduct: p.Referral.Rate}}},
			MinReferrals:       p.Referral.MinReferrals,
			MinSpend:           p.Referral.MinSpend,
			RequiresAcceptance: true,
		}},
		Template: []TemplateVersion{{
			Version:           Version{ID: SeedTermsID, Enabled: p.Template.Enabled},
			Products:          []string{"pod", "serverless"},
			Rates:             []RatePeriod{{From: utc(p.Template.Start), Rates: map[string]decimal.Decimal{AnyProduct: p.Template.Rate}}},
			MinRuntimeSeconds: p.Template.MinRuntimeSeconds,
		}},
		Serverless: []ServerlessVersion{{
			Version:       Version{ID: SeedTermsID, Enabled: p.Serverless.Enabled},
			Products:      []string{"serverless"},
			Threshold:     p.Serverless.Threshold,
			ReferrerBonus: p.Serverless.ReferrerBonus,
			ReferredBonus: p.Serverless.ReferredBonus,
			UsageFrom:     utc(p.Serverless.Start),
		}},
	}
}

// utc returns t in UTC, and the zero time as it is: terms hash their dates, which must not
// depend on the zone they were read in.
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

// Validate reports every parameter out of range, naming the parameter as its flag does.
func (p Params) Validate() error {
	var errs []error
	check := func(ok bool, name, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf("%s: "+format, append([]any{name}, args...)...))
		}
	}
	rate := func(name string, r decimal.Decimal) {
		check(!r.IsNegative() && r.LessThanOrEqual(decimal.NewFromInt(1)), name, "must be between 0 and 1, got %s", r)
	}
	money := func(name string, d decimal.Decimal) {
		check(!d.IsNegative(), name, "must not be negative, got %s", d)
		check(d.Equal(d.Truncate(2)), name, "must be whole cents, got %s", d)
	}
	rate("referral-rate", p.Referral.Rate)
	check(p.Referral.MinReferrals >= 0, "referral-min-referrals", "must not be negative, got %d", p.Referral.MinReferrals)
	money("referral-min-spend", p.Referral.MinSpend)
	rate("template-rate", p.Template.Rate)
	check(p.Template.MinRuntimeSeconds >= 0, "template-min-runtime-seconds", "must not be negative, got %d", p.Template.MinRuntimeSeconds)
	money("serverless-threshold", p.Serverless.Threshold)
	money("serverless-referrer-bonus", p.Serverless.ReferrerBonus)
	money("serverless-referred-bonus", p.Serverless.ReferredBonus)
	check(p.Referral.Enabled || p.Template.Enabled || p.Serverless.Enabled, "programs", "at least one program must be enabled")
	return errors.Join(errs...)
}
