package terms

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/runpod/creditrecon/reconcile"
)

// Describe says in one line what a version of a program pays: its rate periods, window,
// thresholds and limits, e.g. "pod 3%, serverless 5%, other products nothing; 6mo window; from 0
// referrals and 0.00 USD of referral spend; new accounts only (created at most 24h before the
// referral)"; a partner tier starts with "partner tier (by enrollment)", a signup bonus says what
// each recipient gets and its draw table, and a version paid in cash ends with "paid in cash".
// An unknown version is "no such version".
func Describe(t reconcile.Terms, p reconcile.Program, id string) string {
	var parts []string
	add := func(format string, args ...any) { parts = append(parts, fmt.Sprintf(format, args...)) }
	var payout string // of the version found
	switch p {
	case reconcile.Referral:
		v, ok := t.ReferralVersion(id)
		if !ok {
			return "no such version"
		}
		if !v.Enabled {
			return "disabled: earns nothing"
		}
		payout = v.PayoutOf()
		if v.Tier {
			// A tier's thresholds are zero (the parser requires it): enrollment is what qualifies.
			add("partner tier (by enrollment): %s", periods(v.Rates, nil))
			add("%s window", v.Window)
		} else {
			add("%s", periods(v.Rates, nil))
			add("%s window", v.Window)
			accept := ", no acceptance needed"
			if v.RequiresAcceptance {
				accept = ", after acceptance"
			}
			add("from %d referrals and %s USD of referral spend%s", v.MinReferrals, v.MinSpend.StringFixed(2), accept)
		}
		if v.MaxAccountAge != nil {
			add("new accounts only (created at most %s before the referral)", formatAge(*v.MaxAccountAge))
		}
		if v.Cap != nil {
			add("capped at %s USD", v.Cap.StringFixed(2))
		}
	case reconcile.Template:
		v, ok := t.TemplateVersion(id)
		if !ok {
			return "no such version"
		}
		if !v.Enabled {
			return "disabled: earns nothing"
		}
		payout = v.PayoutOf()
		add("%s", periods(v.Rates, v.Products))
		add("from %d runtime seconds", v.MinRuntimeSeconds)
		if v.Cap != nil {
			add("capped at %s USD", v.Cap.StringFixed(2))
		}
	case reconcile.ServerlessReferral:
		v, ok := t.ServerlessVersion(id)
		if !ok {
			return "no such version"
		}
		if !v.Enabled {
			return "disabled: earns nothing"
		}
		payout = v.PayoutOf()
		add("%s + %s USD once %s spend reaches %s USD", v.ReferrerBonus.StringFixed(2), v.ReferredBonus.StringFixed(2),
			strings.Join(v.Products, ", "), v.Threshold.StringFixed(2))
		add("%s window", v.Window)
		if v.MaxAccountAge != nil {
			add("new accounts only (created at most %s before the referral)", formatAge(*v.MaxAccountAge))
		}
	case reconcile.SignupBonus:
		v, ok := t.SignupVersion(id)
		if !ok {
			return "no such version"
		}
		if !v.Enabled {
			return "disabled: earns nothing"
		}
		payout = v.PayoutOf()
		add("referrer and referred user each get a bonus once the referred user's loads reach %s USD", v.MinLoad.StringFixed(2))
		switch n := len(v.FixedCountries); n {
		case 0:
			add("a draw of %s in every known country", drawTable(v.Draw))
		case 1:
			add("%s USD in 1 fixed country, elsewhere a draw of %s", v.Fixed.StringFixed(2), drawTable(v.Draw))
		default:
			add("%s USD in %d fixed countries, elsewhere a draw of %s", v.Fixed.StringFixed(2), n, drawTable(v.Draw))
		}
		if v.UnknownCountry == reconcile.UnknownDraw {
			add("a null or unknown country draws")
		} else {
			add("a null or unknown country gets %s USD", v.Fixed.StringFixed(2))
		}
		if v.MaxAccountAge != nil {
			add("new accounts only (created at most %s before the referral)", formatAge(*v.MaxAccountAge))
		}
	default:
		return "no such program"
	}
	if payout == reconcile.PayoutCash {
		add("paid in cash")
	}
	return strings.Join(parts, "; ")
}

// drawTable describes a draw table: each amount and its chance to 0.01%, "5.00 (85%), 10.00
// (11%)"; a chance that rounds to 0 or 100 without being it is "<0.01%" or ">99.99%".
func drawTable(table []reconcile.DrawEntry) string {
	var total int64
	for _, e := range table {
		total += e.Weight
	}
	hundred := decimal.NewFromInt(100)
	out := make([]string, len(table))
	for i, e := range table {
		share := decimal.NewFromInt(e.Weight).Mul(hundred).DivRound(decimal.NewFromInt(max(total, 1)), 2)
		s := share.String()
		switch {
		case share.IsZero() && e.Weight > 0:
			s = "<0.01"
		case share.Equal(hundred) && e.Weight < total:
			s = ">99.99"
		}
		out[i] = fmt.Sprintf("%s (%s%%)", e.USD.StringFixed(2), s)
	}
	return strings.Join(out, ", ")
}

// periods describes rate periods: "2% of every product", "pod 3%, serverless 5%, other products
// nothing from 2025-06-16". For a template version, products lists what the single rate applies
// to.
func periods(ps []reconcile.RatePeriod, products []string) string {
	var out []string
	for i, p := range ps {
		var s string
		if products != nil {
			s = percent(p.Rates[reconcile.AnyProduct]) + " of " + strings.Join(products, ", ")
		} else {
			s = describeRates(p.Rates)
		}
		if !p.From.IsZero() {
			s += " from " + describeTime(p.From)
		} else if i == 0 && len(ps) > 1 {
			s += " at first"
		}
		out = append(out, s)
	}
	return strings.Join(out, ", then ")
}

func describeRates(rates map[string]decimal.Decimal) string {
	var names []string
	for name := range rates {
		if name != reconcile.AnyProduct {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	var out []string
	for _, name := range names {
		out = append(out, name+" "+percent(rates[name]))
	}
	other, ok := rates[reconcile.AnyProduct]
	switch {
	case ok && len(names) == 0:
		return percent(other) + " of every product"
	case ok:
		out = append(out, "other products "+percent(other))
	default:
		out = append(out, "other products nothing")
	}
	return strings.Join(out, ", ")
}

func percent(r decimal.Decimal) string { return r.Shift(2).String() + "%" }

func describeTime(t time.Time) string {
	if t.Equal(t.Truncate(24 * time.Hour)) {
		return t.UTC().Format(time.DateOnly)
	}
	return t.UTC().Format(time.RFC3339)
}
