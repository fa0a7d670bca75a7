package terms

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/runpod/creditrecon/reconcile"
)

// Marshal writes t as a terms file, in the layout of the shipped files: amounts as quoted
// decimal strings, froms as a DATE when at 00:00 UTC and an RFC 3339 TIME otherwise, keys that
// hold their zero value left out where the file allows it. For terms that Parse accepted, Parse
// reads the result back as equal terms (reconcile.Terms.Equal); terms that break the file's rules
// (an empty list, an id that is not one) are written as they are, and Parse reports them. Fields
// that no terms file sets (ServerlessVersion.UsageFrom, the built-in terms' program start) are
// not written.
func Marshal(t reconcile.Terms) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "holding_days: %d\n", t.HoldingDays)
	fmt.Fprintf(&b, "min_grant_usd: %s\n", money(t.MinGrant))
	b.WriteString("programs:\n")
	if len(t.Referral) > 0 {
		b.WriteString("  referral:\n")
		for _, v := range t.Referral {
			w := versionWriter(&b, v.Version)
			if len(v.Rates) > 0 {
				w.line("rates:")
				for _, p := range v.Rates {
					period(&b, p.From, "products: "+productRates(p.Rates))
				}
			}
			w.key(!v.Window.Lifetime(), "window: "+strconv.Quote(v.Window.String()))
			w.key(v.MinReferrals != 0, fmt.Sprintf("min_referrals: %d", v.MinReferrals))
			w.key(!v.MinSpend.IsZero(), "min_spend_usd: "+money(v.MinSpend))
			w.key(v.RequiresAcceptance, fmt.Sprintf("requires_acceptance: %t", v.RequiresAcceptance))
			if v.MaxAccountAge != nil {
				w.line("max_account_age: " + strconv.Quote(formatAge(*v.MaxAccountAge)))
			}
			if v.Cap != nil {
				w.line("cap_usd: " + money(*v.Cap))
			}
			if v.Tier {
				w.line("tier: true")
			}
		}
	}
	if len(t.Template) > 0 {
		b.WriteString("  template:\n")
		for _, v := range t.Template {
			w := versionWriter(&b, v.Version)
			if len(v.Products) > 0 {
				w.line("products: " + list(v.Products))
			}
			if len(v.Rates) > 0 {
				w.line("rates:")
				for _, p := range v.Rates {
					period(&b, p.From, "rate: "+amount(p.Rates[reconcile.AnyProduct]))
				}
			}
			w.key(v.MinRuntimeSeconds != 0, fmt.Sprintf("min_runtime_seconds: %d", v.MinRuntimeSeconds))
			if v.Cap != nil {
				w.line("cap_usd: " + money(*v.Cap))
			}
		}
	}
	if len(t.Serverless) > 0 {
		b.WriteString("  serverless_referral:\n")
		for _, v := range t.Serverless {
			w := versionWriter(&b, v.Version)
			if len(v.Products) > 0 {
				w.line("products: " + list(v.Products))
			}
			w.key(!v.Threshold.IsZero(), "threshold_usd: "+money(v.Threshold))
			w.key(!v.ReferrerBonus.IsZero(), "referrer_bonus_usd: "+money(v.ReferrerBonus))
			w.key(!v.ReferredBonus.IsZero(), "referred_bonus_usd: "+money(v.ReferredBonus))
			w.key(!v.Window.Lifetime(), "window: "+strconv.Quote(v.Window.String()))
			if v.MaxAccountAge != nil {
				w.line("max_account_age: " + strconv.Quote(formatAge(*v.MaxAccountAge)))
			}
		}
	}
	if len(t.Signup) > 0 {
		b.WriteString("  signup_bonus:\n")
		for _, v := range t.Signup {
			w := versionWriter(&b, v.Version)
			if v.MaxAccountAge != nil {
				w.line("max_account_age: " + strconv.Quote(formatAge(*v.MaxAccountAge)))
			}
			w.key(!v.MinLoad.IsZero(), "min_load_usd: "+money(v.MinLoad))
			w.key(!v.Fixed.IsZero(), "fixed_usd: "+money(v.Fixed))
			// nil and empty differ in a version's canonical content: a disabled version without
			// the key has null, fixed_countries: [] has [].
			if v.FixedCountries != nil {
				w.line("fixed_countries: " + list(v.FixedCountries))
			}
			if len(v.Draw) > 0 {
				w.line("draw:")
				for _, e := range v.Draw {
					fmt.Fprintf(&b, "        - {usd: %s, weight: %d}\n", money(e.USD), e.Weight)
				}
			}
			w.key(v.UnknownCountry != reconcile.UnknownFixed, "unknown_country: "+strconv.Quote(v.UnknownCountry))
		}
	}
	return b.Bytes()
}

// itemWriter writes the keys of one version, a list item under its program.
type itemWriter struct {
	b       *bytes.Buffer
	enabled bool
}

func (w itemWriter) line(s string) { w.b.WriteString("      " + s + "\n") }

// key writes a key that an enabled version must have; a disabled version leaves it out when
// it holds its zero value (set is false), which Parse reads back as the same zero.
func (w itemWriter) key(set bool, s string) {
	if set || w.enabled {
		w.line(s)
	}
}

// versionWriter starts a version's list item with its id, from and enabled.
func versionWriter(b *bytes.Buffer, v reconcile.Version) itemWriter {
	fmt.Fprintf(b, "    - id: %s\n", strconv.Quote(v.ID))
	w := itemWriter{b: b, enabled: v.Enabled}
	if !v.From.IsZero() {
		w.line("from: " + strconv.Quote(formatTime(v.From)))
	}
	if !v.Enabled {
		w.line("enabled: false")
	}
	if v.Payout != "" {
		w.line("payout: " + strconv.Quote(v.Payout))
	}
	return w
}

// period writes a rate period's list item: its from, if any, then its rates.
func period(b *bytes.Buffer, from time.Time, rates string) {
	if !from.IsZero() {
		fmt.Fprintf(b, "        - from: %s\n          %s\n", strconv.Quote(formatTime(from)), rates)
		return
	}
	fmt.Fprintf(b, "        - %s\n", rates)
}

// productRates writes a product -> rate mapping in flow style, products sorted.
func productRates(rates map[string]decimal.Decimal) string {
	products := make([]string, 0, len(rates))
	for p := range rates {
		products = append(products, p)
	}
	slices.Sort(products)
	parts := make([]string, len(products))
	for i, p := range products {
		parts[i] = strconv.Quote(p) + ": " + amount(rates[p])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func list(items []string) string {
	quoted := make([]string, len(items))
	for i, s := range items {
		quoted[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

// amount writes a decimal exactly, as a quoted string.
func amount(d decimal.Decimal) string { return strconv.Quote(d.String()) }

// money writes an amount of USD as a quoted string, with two decimals when it is whole cents
// (and exactly as it is when it is not, for Parse to report).
func money(d decimal.Decimal) string {
	if d.Equal(d.Truncate(2)) {
		return strconv.Quote(d.StringFixed(2))
	}
	return amount(d)
}

// formatAge writes a duration as the file does: whole days above one as Nd, else without the
// zero minutes and seconds that time.Duration.String adds: 30d, 24h, 90m, 1h30m.
func formatAge(d time.Duration) string {
	if d > 24*time.Hour && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
