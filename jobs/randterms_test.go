package jobs_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// randomTerms writes a terms file of several versions per program, with rate periods, windows,
// new-account limits, caps, a holding period and a minimum grant, whose dates fall in the days
// from start: the equality tests run random histories under it.
func randomTerms(rng *rand.Rand, start time.Time, days int) string {
	day := func() string { return start.AddDate(0, 0, 1+rng.IntN(days-1)).Format(time.DateOnly) }
	pick := func(options ...string) string { return options[rng.IntN(len(options))] }
	rate := func() string { return fmt.Sprintf("0.0%d", 1+rng.IntN(9)) }
	froms := func(n int) []string { // increasing dates
		var out []string
		last := start
		for range n {
			last = last.AddDate(0, 0, 1+rng.IntN(max(1, days/(n+1))))
			out = append(out, last.Format(time.DateOnly))
		}
		return out
	}
	var b strings.Builder
	fmt.Fprintf(&b, "holding_days: %d\nmin_grant_usd: %q\nprograms:\n  referral:\n", rng.IntN(3), pick("0.01", "0.50"))
	for i, from := range append([]string{""}, froms(rng.IntN(3))...) {
		fmt.Fprintf(&b, "    - id: r%d\n", i)
		if from != "" {
			fmt.Fprintf(&b, "      from: %s\n", from)
		}
		b.WriteString("      rates:\n")
		fmt.Fprintf(&b, "        - products: %s\n", pick(`{"*": "`+rate()+`"}`, `{pod: "`+rate()+`", serverless: "`+rate()+`"}`,
			`{pod: "`+rate()+`", "*": "`+rate()+`"}`))
		if rng.IntN(2) == 0 {
			fmt.Fprintf(&b, "        - from: %sT%02d:00:00Z\n          products: {\"*\": \"%s\", storage: \"0\"}\n", day(), rng.IntN(24), rate())
		}
		fmt.Fprintf(&b, "      window: %s\n", pick("lifetime", "lifetime", "10d", "1mo", "20d"))
		fmt.Fprintf(&b, "      min_referrals: %d\n      min_spend_usd: %q\n      requires_acceptance: %t\n",
			rng.IntN(4), pick("0", "10.00"), rng.IntN(3) == 0)
		if rng.IntN(3) == 0 {
			fmt.Fprintf(&b, "      max_account_age: %s\n", pick("48h", "5d", "30d"))
		}
		if rng.IntN(3) == 0 {
			fmt.Fprintf(&b, "      cap_usd: %q\n", pick("5.00", "30.00"))
		}
	}
	// A partner tier after the dated versions, enrolled by the tests.
	fmt.Fprintf(&b, "    - id: partner\n      tier: true\n      payout: %s\n      rates: [{products: {pod: %q, \"*\": %q}}]\n"+
		"      window: %s\n      min_referrals: 0\n      min_spend_usd: \"0\"\n      requires_acceptance: false\n",
		pick("cash", "credits"), rate(), rate(), pick("20d", "1mo", "lifetime"))
	b.WriteString("  template:\n")
	for i, from := range append([]string{""}, froms(rng.IntN(2))...) {
		fmt.Fprintf(&b, "    - id: t%d\n", i)
		if from != "" {
			fmt.Fprintf(&b, "      from: %s\n", from)
		}
		fmt.Fprintf(&b, "      products: %s\n      rates:\n        - rate: %q\n", pick("[pod, serverless]", "[pod]"), rate())
		if rng.IntN(2) == 0 {
			fmt.Fprintf(&b, "        - from: %s\n          rate: %q\n", day(), rate())
		}
		fmt.Fprintf(&b, "      min_runtime_seconds: %d\n", pick2(rng, 0, 20000))
		if rng.IntN(3) == 0 {
			b.WriteString("      cap_usd: \"3.00\"\n")
		}
	}
	b.WriteString("  serverless_referral:\n")
	for i, from := range append([]string{""}, froms(rng.IntN(2))...) {
		fmt.Fprintf(&b, "    - id: s%d\n", i)
		if from != "" {
			fmt.Fprintf(&b, "      from: %s\n", from)
		}
		if i > 0 && rng.IntN(3) == 0 {
			b.WriteString("      enabled: false\n")
			continue
		}
		fmt.Fprintf(&b, "      products: %s\n      threshold_usd: %q\n      referrer_bonus_usd: \"5.00\"\n      referred_bonus_usd: \"7.00\"\n",
			pick("[serverless]", "[serverless, pod]"), pick("20.00", "50.00"))
		fmt.Fprintf(&b, "      window: %s\n", pick("lifetime", "15d", "1mo"))
		if rng.IntN(3) == 0 {
			fmt.Fprintf(&b, "      max_account_age: %s\n", pick("48h", "30d"))
		}
	}
	b.WriteString("  signup_bonus:\n")
	for i, from := range append([]string{""}, froms(rng.IntN(2))...) {
		fmt.Fprintf(&b, "    - id: b%d\n", i)
		if from != "" {
			fmt.Fprintf(&b, "      from: %s\n", from)
		}
		fmt.Fprintf(&b, "      min_load_usd: %q\n      fixed_usd: \"5.00\"\n      fixed_countries: [DE, FR]\n      unknown_country: %s\n",
			pick("10.00", "30.00"), pick("fixed", "draw"))
		b.WriteString("      draw: [{usd: \"5.00\", weight: 85}, {usd: \"10.00\", weight: 11}, {usd: \"100.00\", weight: 4}]\n")
		if rng.IntN(3) == 0 {
			fmt.Fprintf(&b, "      max_account_age: %s\n", pick("48h", "30d"))
		}
	}
	return b.String()
}

func pick2(rng *rand.Rand, a, b int) int {
	if rng.IntN(2) == 0 {
		return a
	}
	return b
}
