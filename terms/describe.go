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
// referral)". An unknown version is "no such version".
func Describe(t reconcile.Terms, p reconcile.Program, id string) string {
	var parts []string
	add := func(format string, args ...any) { parts = append(parts, fmt.Sprintf(format, args...)) }
	switch p {
	case reconcile.Referral:
		v, ok := t.ReferralVersion(id)
		if !ok {
			return "no such version"
		}
		if !v.Enabled {
			return "disabled: earns nothing"
		}
		add("%s", periods(v.Rates, nil))
		add("%s window", v.Window)
		accept := ", no acceptance needed"
		if v.RequiresAcceptance {
			accept = ", after acceptance"
		}
		add("from %d referrals and %s USD of referral spend%s", v.MinReferrals, v.MinSpend.StringFixed(2), accept)
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
		add("%s + %s USD once %s spend reaches %s USD", v.ReferrerBonus.StringFixed(2), v.ReferredBonus.StringFixed(2),
			strings.Join(v.Products, ", "), v.Threshold.StringFixed(2))
		add("%s window", v.Window)
		if v.MaxAccountAge != nil {
			add("new accounts only (created at most %s before the referral)", formatAge(*v.MaxAccountAge))
		}
	default:
		return "no such program"
	}
	return strings.Join(parts, "; ")
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
