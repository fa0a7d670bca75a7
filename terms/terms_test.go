package terms

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/shopspring/decimal"

	"github.com/runpod/creditrecon/reconcile"
)

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func decp(s string) *decimal.Decimal { d := dec(s); return &d }

func durp(d time.Duration) *time.Duration { return &d }

func date(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

// seedTerms are the built-in terms, written out by hand (TestSeedIsBuiltIn checks them against
// reconcile.DefaultParams().Terms()).
func seedTerms() reconcile.Terms {
	return reconcile.Terms{
		HoldingDays: 0,
		MinGrant:    dec("0.01"),
		Referral: []reconcile.ReferralVersion{{
			Version:            reconcile.Version{ID: reconcile.SeedTermsID, Enabled: true},
			Rates:              []reconcile.RatePeriod{{Rates: map[string]decimal.Decimal{reconcile.AnyProduct: dec("0.02")}}},
			MinReferrals:       25,
			MinSpend:           dec("500.00"),
			RequiresAcceptance: true,
		}},
		Template: []reconcile.TemplateVersion{{
			Version:           reconcile.Version{ID: reconcile.SeedTermsID, Enabled: true},
			Products:          []string{"pod", "serverless"},
			Rates:             []reconcile.RatePeriod{{Rates: map[string]decimal.Decimal{reconcile.AnyProduct: dec("0.01")}}},
			MinRuntimeSeconds: 86400,
		}},
		Serverless: []reconcile.ServerlessVersion{{
			Version:       reconcile.Version{ID: reconcile.SeedTermsID, Enabled: true},
			Products:      []string{"serverless"},
			Threshold:     dec("1000.00"),
			ReferrerBonus: dec("500.00"),
			ReferredBonus: dec("500.00"),
		}},
	}
}

// runpod2025Terms are the seed terms followed by RunPod's June 2025 terms (SPEC 7.1).
func runpod2025Terms() reconcile.Terms {
	t := seedTerms()
	t.Referral = append(t.Referral, reconcile.ReferralVersion{
		Version: reconcile.Version{ID: "runpod-2025-06", From: date("2025-06-16"), Enabled: true},
		Rates: []reconcile.RatePeriod{{Rates: map[string]decimal.Decimal{
			"pod": dec("0.03"), "serverless": dec("0.05"),
		}}},
		Window:        reconcile.Window{Months: 6},
		MinSpend:      dec("0"),
		MaxAccountAge: durp(24 * time.Hour),
	})
	t.Referral = append(t.Referral, reconcile.ReferralVersion{
		Version: reconcile.Version{ID: "affiliate-2025", Enabled: true, Payout: reconcile.PayoutCash},
		Rates: []reconcile.RatePeriod{{Rates: map[string]decimal.Decimal{
			"pod": dec("0.10"), "serverless": dec("0.10"),
		}}},
		Window:   reconcile.Window{Months: 6},
		MinSpend: dec("0"),
		Tier:     true,
	})
	t.Serverless = append(t.Serverless, reconcile.ServerlessVersion{
		Version: reconcile.Version{ID: "ended-2025-06", From: date("2025-06-16"), Enabled: false},
	})
	t.Signup = []reconcile.SignupVersion{{
		Version:       reconcile.Version{ID: "runpod-2025-06", From: date("2025-06-16"), Enabled: true},
		MaxAccountAge: durp(24 * time.Hour),
		MinLoad:       dec("10.00"),
		Fixed:         dec("5.00"),
		FixedCountries: []string{
			"AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV",
			"LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO", "CH", "GB",
		},
		Draw: []reconcile.DrawEntry{
			{USD: dec("5.00"), Weight: 8500},
			{USD: dec("10.00"), Weight: 1100},
			{USD: dec("25.00"), Weight: 250},
			{USD: dec("50.00"), Weight: 100},
			{USD: dec("100.00"), Weight: 40},
			{USD: dec("500.00"), Weight: 10},
		},
		UnknownCountry: reconcile.UnknownFixed,
	}}
	return t
}

// signupAndTiersTerms are testdata/valid/signup-and-tiers.yaml.
func signupAndTiersTerms() reconcile.Terms {
	return reconcile.Terms{
		MinGrant: dec("0.01"),
		Referral: []reconcile.ReferralVersion{{
			Version:            reconcile.Version{ID: "seed", Enabled: true},
			Rates:              []reconcile.RatePeriod{{Rates: map[string]decimal.Decimal{"*": dec("0.02")}}},
			MinReferrals:       25,
			MinSpend:           dec("500"),
			RequiresAcceptance: true,
		}, {
			Version:  reconcile.Version{ID: "credits-2026", From: date("2026-01-01"), Enabled: true},
			Rates:    []reconcile.RatePeriod{{Rates: map[string]decimal.Decimal{"pod": dec("0.03")}}},
			Window:   reconcile.Window{Months: 6},
			MinSpend: dec("0"),
		}, {
			Version: reconcile.Version{ID: "gold", Enabled: true, Payout: reconcile.PayoutCash},
			Rates: []reconcile.RatePeriod{
				{Rates: map[string]decimal.Decimal{"pod": dec("0.1"), "serverless": dec("0.1")}},
				{From: date("2027-01-01"), Rates: map[string]decimal.Decimal{"*": dec("0.12")}},
			},
			Window:   reconcile.Window{Days: 180},
			MinSpend: dec("0"),
			Cap:      decp("50000"),
			Tier:     true,
		}, {
			Version: reconcile.Version{ID: "silver", Enabled: false},
			Tier:    true,
		}},
		Template: []reconcile.TemplateVersion{{
			Version:           reconcile.Version{ID: "seed", Enabled: true, Payout: reconcile.PayoutCash},
			Products:          []string{"pod"},
			Rates:             []reconcile.RatePeriod{{Rates: map[string]decimal.Decimal{"*": dec("0.01")}}},
			MinRuntimeSeconds: 0,
		}},
		Serverless: []reconcile.ServerlessVersion{{
			Version: reconcile.Version{ID: "off", Enabled: false, Payout: reconcile.PayoutCash},
		}},
		Signup: []reconcile.SignupVersion{{
			Version:        reconcile.Version{ID: "eu-only", Enabled: true},
			MinLoad:        dec("10"),
			Fixed:          dec("5"),
			FixedCountries: []string{"DE", "FR", "NO"},
			Draw:           []reconcile.DrawEntry{{USD: dec("5"), Weight: 1}},
			UnknownCountry: reconcile.UnknownFixed,
		}, {
			Version:        reconcile.Version{ID: "everyone-draws", From: date("2026-01-01"), Enabled: true, Payout: reconcile.PayoutCash},
			MaxAccountAge:  durp(7 * 24 * time.Hour),
			MinLoad:        dec("25.00"),
			Fixed:          dec("1.00"),
			FixedCountries: []string{},
			Draw: []reconcile.DrawEntry{
				{USD: dec("1.00"), Weight: 999_999_999_999},
				{USD: dec("1000000.00"), Weight: 1},
			},
			UnknownCountry: reconcile.UnknownDraw,
		}, {
			Version:        reconcile.Version{ID: "paused", From: date("2027-01-01"), Enabled: false},
			UnknownCountry: reconcile.UnknownFixed,
		}},
	}
}

// variationsTerms are testdata/valid/variations.yaml.
func variationsTerms() reconcile.Terms {
	return reconcile.Terms{
		HoldingDays: 7,
		MinGrant:    dec("1"),
		Referral: []reconcile.ReferralVersion{{
			Version: reconcile.Version{ID: "v1", From: time.Date(2024, 1, 1, 7, 30, 0, 0, time.UTC), Enabled: true},
			Rates: []reconcile.RatePeriod{
				{Rates: map[string]decimal.Decimal{"*": dec("0.02")}},
				{From: date("2025-01-01"), Rates: map[string]decimal.Decimal{"pod": dec("0.1"), "serverless": dec("0.05"), "*": dec("0")}},
			},
			Window:        reconcile.Window{Days: 180},
			MinSpend:      dec("0"),
			MaxAccountAge: durp(30 * 24 * time.Hour),
			Cap:           decp("10000"),
		}, {
			Version: reconcile.Version{ID: "2025", From: date("2025-06-16"), Enabled: false},
			Window:  reconcile.Window{Months: 6},
		}},
		Template: []reconcile.TemplateVersion{{
			Version:  reconcile.Version{ID: "only-from-2026", From: date("2026-01-01"), Enabled: true},
			Products: []string{"pod"},
			Rates: []reconcile.RatePeriod{
				{Rates: map[string]decimal.Decimal{"*": dec("1")}},
				{From: date("2027-01-01"), Rates: map[string]decimal.Decimal{"*": dec("0.5")}},
			},
			Cap: decp("0.01"),
		}, {
			Version: reconcile.Version{ID: "paused", From: time.Date(2027, 6, 1, 0, 0, 0, 5e8, time.UTC), Enabled: false},
		}},
		Serverless: []reconcile.ServerlessVersion{{Version: reconcile.Version{ID: "off", Enabled: false}}},
	}
}

// errLines returns the problems of a Parse error, one per line.
func errLines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

func TestLoadFiles(t *testing.T) {
	tests := []struct {
		path string
		want reconcile.Terms
	}{
		{"seed.yaml", seedTerms()},
		{"runpod-2025.yaml", runpod2025Terms()},
		{"testdata/valid/variations.yaml", variationsTerms()},
		{"testdata/valid/signup-and-tiers.yaml", signupAndTiersTerms()},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got, err := Load(tt.path)
			if err != nil {
				t.Fatalf("Load(%s): %v", tt.path, err)
			}
			if !got.Equal(tt.want) {
				t.Errorf("Load(%s) is not the terms wanted:\ngot:\n%s\nwant:\n%s", tt.path, Marshal(got), Marshal(tt.want))
			}
			for _, v := range got.Records() {
				if !v.From.IsZero() && v.From.Location() != time.UTC {
					t.Errorf("%s/%s: from in %s, want UTC", v.Program, v.ID, v.From.Location())
				}
			}
		})
	}
}

// TestSeedIsBuiltIn checks that seed.yaml is exactly the built-in terms: a run with
// --terms terms/seed.yaml and a run without --terms are the same run.
func TestSeedIsBuiltIn(t *testing.T) {
	got, err := Load("seed.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := reconcile.DefaultParams().Terms()
	if !got.Equal(want) || got.HoldingDays != want.HoldingDays || !got.MinGrant.Equal(want.MinGrant) {
		t.Errorf("seed.yaml is not reconcile.DefaultParams().Terms():\ngot:\n%s\nwant:\n%s", Marshal(got), Marshal(want))
	}
}

func TestShippedFilesNameTheSchema(t *testing.T) {
	for _, path := range []string{"seed.yaml", "runpod-2025.yaml"} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		got, _, _ := strings.Cut(string(data), "\n")
		if want := "# yaml-language-server: $schema=terms.schema.json"; got != want {
			t.Errorf("%s: first line %q, want %q (editors find the schema by it)", path, got, want)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load(missing file): got %v, want an error that is os.ErrNotExist", err)
	}
}

// TestParseErrors checks the problems Parse reports, with their file, line, column and key path.
func TestParseErrors(t *testing.T) {
	const referral = `programs:
  referral:
    - id: seed
      rates:
        - products: {"*": "0.02"}
      window: lifetime
      min_referrals: 25
      min_spend_usd: "500.00"
      requires_acceptance: true
`
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "bad window in a later version",
			yaml: referral + `    - id: runpod-2025-06
      from: 2025-06-16
      rates:
        - products: {pod: "0.03"}
      window: 6 months
      min_referrals: 0
      min_spend_usd: "0"
      requires_acceptance: false
`,
			want: []string{`terms.yaml:14:15: programs.referral[1].window: "6 months" is not a window (lifetime, Nmo or Nd)`},
		},
		{
			name: "every problem, in file order",
			yaml: `holding_days: -1
min_grant_usd: "0.015"
programs:
  template:
    - id: seed
      products: [pod]
      rates: [{rate: "1.01"}]
      min_runtime_seconds: 86400
      runtime: 1
    - id: seed
      from: 2025-06-16
`,
			want: []string{
				`terms.yaml:1:15: holding_days: must be at least 0, got -1`,
				`terms.yaml:2:16: min_grant_usd: 0.015 is not whole cents: money has at most 2 decimal places`,
				`terms.yaml:7:22: programs.template[0].rates[0].rate: 1.01 is not a rate between 0 and 1 (0.03 is 3%)`,
				`terms.yaml:9:7: programs.template[0].runtime: unknown key: a template version has id, from, enabled, products, rates, min_runtime_seconds, cap_usd, payout`,
				`terms.yaml:10:7: programs.template[1].products: missing: an enabled template version needs it (or set enabled: false)`,
				`terms.yaml:10:7: programs.template[1].rates: missing: an enabled template version needs it (or set enabled: false)`,
				`terms.yaml:10:7: programs.template[1].min_runtime_seconds: missing: an enabled template version needs it (or set enabled: false)`,
				`terms.yaml:10:11: programs.template[1].id: duplicate id "seed" (first on line 5): ids are unique within a program`,
			},
		},
		{
			name: "not YAML",
			yaml: "programs: [\n",
			want: []string{`terms.yaml:1:11: not valid YAML: sequence end token ']' not found`},
		},
		{
			name: "a list at the top",
			yaml: "- programs\n",
			want: []string{`terms.yaml:1:1: want the terms file (a mapping), got a list`},
		},
		{
			name: "a scalar at the top",
			yaml: "hello\n",
			want: []string{`terms.yaml:1:1: want the terms file (a mapping), got "hello"`},
		},
		{
			name: "empty",
			yaml: "",
			want: []string{`terms.yaml:1:1: empty document: a terms file sets at least programs (start from terms/seed.yaml)`},
		},
		{
			name: "a mapping where the rate periods are",
			yaml: strings.Replace(referral, `      rates:
        - products: {"*": "0.02"}`, `      rates: {products: {"*": "0.02"}}`, 1),
			want: []string{`terms.yaml:4:14: programs.referral[0].rates: want a list of rate periods, got a mapping`},
		},
		{
			name: "empty rate periods",
			yaml: strings.Replace(referral, `      rates:
        - products: {"*": "0.02"}`, `      rates: []`, 1),
			want: []string{`terms.yaml:4:14: programs.referral[0].rates: empty: want at least one rate period`},
		},
		{
			name: "duplicate top-level key",
			yaml: "holding_days: 1\n" + referral + "holding_days: 2\n",
			want: []string{`terms.yaml:11:1: holding_days: duplicate key (first on line 1)`},
		},
		{
			name: "duplicate product rate",
			yaml: strings.Replace(referral, `{"*": "0.02"}`, `{pod: "0.02", pod: "0.03"}`, 1),
			want: []string{`terms.yaml:5:35: programs.referral[0].rates[0].products.pod: duplicate key (first on line 5)`},
		},
		{
			name: "a product that is not one",
			yaml: strings.Replace(referral, `{"*": "0.02"}`, `{"pod ": "0.02"}`, 1),
			want: []string{`terms.yaml:5:22: programs.referral[0].rates[0].products["pod "]: "pod " is not a product: letters, digits and _ . : / -, at most 64, or "*" for every other product`},
		},
		{
			name: "two documents",
			yaml: referral + "---\n" + referral,
			want: []string{`terms.yaml:11:1: a second YAML document (---): a terms file is one document`},
		},
		{
			name: "infinity and NaN",
			yaml: strings.Replace(strings.Replace(referral, `"500.00"`, `.inf`, 1), `"0.02"`, `.nan`, 1),
			want: []string{
				`terms.yaml:5:27: programs.referral[0].rates[0].products["*"]: want a rate between 0 and 1 like "0.03" (3%), got .nan`,
				`terms.yaml:8:22: programs.referral[0].min_spend_usd: want an amount of USD like "500.00", got .inf`,
			},
		},
		{
			name: "NaN as a string",
			yaml: strings.Replace(referral, `"500.00"`, `"NaN"`, 1),
			want: []string{`terms.yaml:8:22: programs.referral[0].min_spend_usd: "NaN" is not a decimal number: want an amount of USD like "500.00"`},
		},
		{
			name: "merge key",
			yaml: strings.Replace(referral, "      window: lifetime\n", "      <<: {window: lifetime}\n", 1),
			want: []string{
				`terms.yaml:3:7: programs.referral[0].window: missing: an enabled referral version needs it (or set enabled: false)`,
				`terms.yaml:6:7: programs.referral[0]: merge keys (<<) are not supported: write the keys out`,
			},
		},
		{
			name: "a disabled version's keys are still checked",
			yaml: referral + "    - id: off\n      from: 2026-01-01\n      enabled: false\n      window: forever\n",
			want: []string{`terms.yaml:13:15: programs.referral[1].window: "forever" is not a window (lifetime, Nmo or Nd)`},
		},
		{
			name: "enabled that is not a bool does not also report missing keys",
			yaml: "programs:\n  template:\n    - id: seed\n      enabled: 0\n",
			want: []string{`terms.yaml:4:16: programs.template[0].enabled: want true or false, got 0`},
		},
		{
			name: "id too long",
			yaml: "programs:\n  template:\n    - id: " + strings.Repeat("a", 41) + "\n      enabled: false\n",
			want: []string{`terms.yaml:3:11: programs.template[0].id: "` + strings.Repeat("a", 41) + `" is not an id: lowercase letters, digits and -, starting with a letter or digit, at most 40`},
		},
		{
			name: "empty id",
			yaml: "programs:\n  template:\n    - id: \"\"\n      enabled: false\n",
			want: []string{`terms.yaml:3:11: programs.template[0].id: "" is not an id: lowercase letters, digits and -, starting with a letter or digit, at most 40`},
		},
		{
			name: "integer too large",
			yaml: strings.Replace(referral, "min_referrals: 25", "min_referrals: 99999999999999999999", 1),
			want: []string{`terms.yaml:7:22: programs.referral[0].min_referrals: 99999999999999999999 is too large: at most 9223372036854775807`},
		},
		{
			name: "holding days too large",
			yaml: "holding_days: 36501\n" + referral,
			want: []string{`terms.yaml:1:15: holding_days: 36501 is too large: at most 36500`},
		},
		{
			name: "a from that is not in a UTC year from 1 to 9999",
			yaml: "programs:\n  template:\n    - id: seed\n      from: 0001-01-01T00:00:00+01:00\n      enabled: false\n",
			want: []string{`terms.yaml:4:13: programs.template[0].from: "0001-01-01T00:00:00+01:00" is out of range: want a UTC year from 1 to 9999`},
		},
		{
			name: "a from with the time but no zone",
			yaml: "programs:\n  template:\n    - id: seed\n      from: 2025-06-16T00:00:00\n      enabled: false\n",
			want: []string{`terms.yaml:4:13: programs.template[0].from: "2025-06-16T00:00:00" is not a DATE like 2025-06-16 (00:00 UTC) or an RFC 3339 TIME like 2025-06-16T12:00:00Z`},
		},
		{
			name: "ages too long",
			yaml: strings.Replace(referral, "      window: lifetime\n", "      window: lifetime\n      max_account_age: 36501d\n", 1) +
				"  serverless_referral:\n    - id: seed\n      enabled: false\n      max_account_age: 876601h\n",
			want: []string{
				`terms.yaml:7:24: programs.referral[0].max_account_age: "36501d" is too long: at most 36500d`,
				`terms.yaml:14:24: programs.serverless_referral[0].max_account_age: "876601h" is too long: at most 36500d`,
			},
		},
		{
			name: "window in days too long",
			yaml: strings.Replace(referral, "window: lifetime", "window: 36501d", 1),
			want: []string{`terms.yaml:6:15: programs.referral[0].window: "36501d" is too long: at most 36500d`},
		},
		{
			name: "signup bonus problems, in file order",
			yaml: `programs:
  signup_bonus:
    - id: bonus
      payout: check
      min_load_usd: "0"
      fixed_usd: "5.001"
      fixed_countries: [DE, " FR", UK, DE, "NO", 49]
      draw:
        - {usd: "5.00", weight: 8500.5}
        - {usd: "10.00"}
        - {usd: "-1", weight: 1}
      unknown_country: Fixed
`,
			want: []string{
				`terms.yaml:4:15: programs.signup_bonus[0].payout: "check" is not a payout: credits (the default) or cash`,
				`terms.yaml:5:21: programs.signup_bonus[0].min_load_usd: must be more than 0`,
				`terms.yaml:6:18: programs.signup_bonus[0].fixed_usd: 5.001 is not whole cents: money has at most 2 decimal places`,
				`terms.yaml:7:29: programs.signup_bonus[0].fixed_countries[1]: " FR" is not a country code as the file writes it: write "FR" (upper case, no spaces)`,
				`terms.yaml:7:36: programs.signup_bonus[0].fixed_countries[2]: "UK" is not an ISO 3166-1 alpha-2 code assigned to a country, like DE (EU, XK, ZZ and other codes that name no country are not)`,
				`terms.yaml:7:40: programs.signup_bonus[0].fixed_countries[3]: duplicate country "DE"`,
				`terms.yaml:7:50: programs.signup_bonus[0].fixed_countries[5]: want an ISO 3166-1 alpha-2 country code like DE, got the number 49: quote it ("49")`,
				`terms.yaml:9:33: programs.signup_bonus[0].draw[0].weight: want a whole number written in digits, like 25, got 8500.5`,
				`terms.yaml:10:11: programs.signup_bonus[0].draw[1].weight: missing: a draw entry is an amount and its weight`,
				`terms.yaml:11:17: programs.signup_bonus[0].draw[2].usd: must not be negative, got -1`,
				`terms.yaml:12:24: programs.signup_bonus[0].unknown_country: "Fixed" is not fixed or draw: what a recipient of null or unknown country gets`,
			},
		},
		{
			name: "tier problems, in file order",
			yaml: referral + `    - id: gold
      tier: true
      from: 2026-01-01
      rates: [{products: {pod: "0.10"}}]
      window: 6mo
      min_referrals: 25
      min_spend_usd: "500.00"
      requires_acceptance: true
      max_account_age: 24h
    - id: seed
      from: 2026-01-01
      enabled: false
`,
			want: []string{
				`terms.yaml:12:13: programs.referral[1].from: not in a tier version: a tier binds no referral by date, only the referrers enrolled into it, each from its enrollment date (creditrecon enroll)`,
				`terms.yaml:15:22: programs.referral[1].min_referrals: must be 0 in a tier version, got 25: enrollment is a tier's acceptance (enroll the referrers who qualify with creditrecon enroll)`,
				`terms.yaml:16:22: programs.referral[1].min_spend_usd: must be "0" in a tier version, got 500.00: enrollment is a tier's acceptance (enroll the referrers who qualify with creditrecon enroll)`,
				`terms.yaml:17:28: programs.referral[1].requires_acceptance: must be false in a tier version: enrollment is a tier's acceptance (enroll the referrers who qualify with creditrecon enroll)`,
				`terms.yaml:18:24: programs.referral[1].max_account_age: not in a tier version: the dated version each referral binds to decides whether it counts`,
				`terms.yaml:19:7: programs.referral[2]: a dated version after the tier version programs.referral[1]: tier versions are listed after every dated version`,
				`terms.yaml:19:11: programs.referral[2].id: duplicate id "seed" (first on line 3): ids are unique within a program`,
			},
		},
		{
			name: "a dated version after a tier is checked against the dated one before it",
			yaml: referral + `    - id: v2
      from: 2026-01-01
      enabled: false
    - id: gold
      tier: true
      enabled: false
    - id: v3
      from: 2025-01-01
      enabled: false
`,
			want: []string{
				`terms.yaml:16:7: programs.referral[3]: a dated version after the tier version programs.referral[2]: tier versions are listed after every dated version`,
				`terms.yaml:17:13: programs.referral[3].from: 2025-01-01 is not after the previous version's from (2026-01-01): versions are listed in increasing from`,
			},
		},
		{
			name: "a tier alone",
			yaml: "programs:\n  referral:\n    - id: gold\n      tier: true\n      enabled: false\n",
			want: []string{`terms.yaml:4:13: programs.referral[0].tier: the first version of a program is a dated one, not a tier: a tier changes the terms of referrals bound to a dated version (list tiers after the dated versions)`},
		},
		{
			name: "draw weights: each at most 10^12, and their total",
			yaml: "programs:\n  signup_bonus:\n    - id: b\n      enabled: false\n      draw:\n" +
				"        - {usd: 1, weight: 1000000000000}\n        - {usd: 2, weight: 99999999999999999999}\n        - {usd: 3, weight: 1}\n",
			want: []string{
				`terms.yaml:6:9: programs.signup_bonus[0].draw: the weights add up to more than 1000000000000: scale them down`,
				`terms.yaml:7:28: programs.signup_bonus[0].draw[1].weight: 99999999999999999999 is too large: at most 1000000000000`,
			},
		},
		{
			name: "signup_bonus is not a place for referral keys",
			yaml: "programs:\n  signup_bonus:\n    - id: b\n      enabled: false\n      tier: true\n",
			want: []string{`terms.yaml:5:7: programs.signup_bonus[0].tier: unknown key: a signup_bonus version has id, from, enabled, max_account_age, min_load_usd, fixed_usd, fixed_countries, draw, unknown_country, payout`},
		},
		{
			name: "versions not a list of mappings",
			yaml: "programs:\n  template:\n    - seed\n",
			want: []string{`terms.yaml:3:7: programs.template[0]: want a template version (a mapping), got "seed"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse("terms.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse accepted it: %+v", got)
			}
			if gotLines := errLines(err); strings.Join(gotLines, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\ngot:\n%s\nwant:\n%s", strings.Join(gotLines, "\n"), strings.Join(tt.want, "\n"))
			}
			var pe *Error
			if !errors.As(err, &pe) || pe.File != "terms.yaml" {
				t.Errorf("errors.As(err, *Error): got %+v, want an *Error naming terms.yaml", pe)
			}
			if !got.Equal(reconcile.Terms{}) {
				t.Errorf("terms with the error: got %+v, want zero Terms", got)
			}
		})
	}
}

// TestParseValues checks how values are read, on files Parse accepts.
func TestParseValues(t *testing.T) {
	const head = "programs:\n  referral:\n    - id: seed\n      rates: [{products: {\"*\": \"0.02\"}}]\n" +
		"      min_referrals: 0\n      min_spend_usd: \"0\"\n      requires_acceptance: false\n"
	tests := []struct {
		name    string
		window  string
		age     string
		want    reconcile.Window
		wantAge time.Duration
	}{
		{"lifetime and zero age", "lifetime", "0s", reconcile.Window{}, 0},
		{"months and minutes", "6mo", "90m", reconcile.Window{Months: 6}, 90 * time.Minute},
		{"days and days", "180d", "30d", reconcile.Window{Days: 180}, 30 * 24 * time.Hour},
		{"the longest", "1200mo", "36500d", reconcile.Window{Months: 1200}, 36500 * 24 * time.Hour},
		{"hours and minutes", "36500d", "1h30m", reconcile.Window{Days: 36500}, 90 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse("terms.yaml", []byte(head+"      window: "+tt.window+"\n      max_account_age: "+tt.age+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			v := got.Referral[0]
			if v.Window != tt.want {
				t.Errorf("window %s: got %+v, want %+v", tt.window, v.Window, tt.want)
			}
			if v.MaxAccountAge == nil || *v.MaxAccountAge != tt.wantAge {
				t.Errorf("max_account_age %s: got %v, want %s", tt.age, v.MaxAccountAge, tt.wantAge)
			}
			if !v.Enabled || got.HoldingDays != 0 || !got.MinGrant.Equal(dec("0.01")) {
				t.Errorf("defaults: got enabled %t, holding_days %d, min_grant_usd %s; want true, 0, 0.01", v.Enabled, got.HoldingDays, got.MinGrant)
			}
		})
	}
}

// TestAmountsExact checks that amounts are read from their source text: a number is never a
// float64 on its way to a decimal.
func TestAmountsExact(t *testing.T) {
	tests := []struct {
		name    string
		rate    string // written as the value of "*"
		minimum string // written as min_spend_usd
		want    string // the rate, exactly
		wantMin string // the minimum, exactly
		wantErr string // the problem, when Parse must reject it
	}{
		{name: "quoted", rate: `"0.1"`, minimum: `"0.10"`, want: "0.1", wantMin: "0.1"},
		{name: "plain numbers", rate: `0.1`, minimum: `0.1`, want: "0.1", wantMin: "0.1"},
		{name: "more digits than a float64", rate: `0.30000000000000004441`, minimum: `12345678901234567.89`,
			want: "0.30000000000000004441", wantMin: "12345678901234567.89"},
		{name: "trailing zeros are still whole cents", rate: `1.000`, minimum: `"500.000"`, want: "1", wantMin: "500"},
		{name: "zero", rate: `0`, minimum: `0`, want: "0", wantMin: "0"},
		{name: "sub-cent money quoted", rate: `"0.02"`, minimum: `"0.015"`,
			wantErr: `terms.yaml:8:22: programs.referral[0].min_spend_usd: 0.015 is not whole cents: money has at most 2 decimal places`},
		{name: "sub-cent money as a number", rate: `"0.02"`, minimum: `0.015`,
			wantErr: `terms.yaml:8:22: programs.referral[0].min_spend_usd: 0.015 is not whole cents: money has at most 2 decimal places`},
		{name: "exponent", rate: `2e-2`, minimum: `"0"`,
			wantErr: `terms.yaml:5:27: programs.referral[0].rates[0].products["*"]: "2e-2" is not a decimal number: want a rate between 0 and 1 like "0.03" (3%)`},
		{name: "leading plus", rate: `"0.02"`, minimum: `+5`,
			wantErr: `terms.yaml:8:22: programs.referral[0].min_spend_usd: "+5" is not a decimal number: want an amount of USD like "500.00"`},
		{name: "infinity as a string", rate: `"0.02"`, minimum: `"Infinity"`,
			wantErr: `terms.yaml:8:22: programs.referral[0].min_spend_usd: "Infinity" is not a decimal number: want an amount of USD like "500.00"`},
		{name: "a bool", rate: `true`, minimum: `"0"`,
			wantErr: `terms.yaml:5:27: programs.referral[0].rates[0].products["*"]: want a rate between 0 and 1 like "0.03" (3%), got true`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := "programs:\n  referral:\n    - id: seed\n      rates:\n        - products: {\"*\": " + tt.rate + "}\n" +
				"      window: lifetime\n      min_referrals: 0\n      min_spend_usd: " + tt.minimum + "\n      requires_acceptance: false\n"
			got, err := Parse("terms.yaml", []byte(file))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error: got %v, want %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			v := got.Referral[0]
			if r := v.Rates[0].Rates["*"]; r.String() != tt.want || !r.Equal(dec(tt.want)) {
				t.Errorf("rate %s: got %s, want exactly %s", tt.rate, r, tt.want)
			}
			if v.MinSpend.String() != tt.wantMin {
				t.Errorf("min_spend_usd %s: got %s, want exactly %s", tt.minimum, v.MinSpend, tt.wantMin)
			}
		})
	}
}

// The schema and the parser agree on the shipped files, on the valid corpus and on the broken
// corpus, except on the rules JSON Schema cannot express, which are the parser's alone:
//
//   - ids are unique within a program (duplicate-id);
//   - versions, and a version's rate periods, are in strictly increasing from
//     (versions-out-of-order, rate-periods-out-of-order);
//   - every version and rate period after the first has a from (later-version-without-from,
//     later-rate-period-without-from). Draft 2020-12 could say it with prefixItems, but the VS
//     Code YAML extension validates with draft-07 semantics, where items would then apply to the
//     first version too and flag every seed version; so the schema leaves it to the parser;
//   - no key is given twice in a mapping: a JSON value cannot even hold it (duplicate-key);
//   - the file is one YAML document (multi-document);
//   - no anchors, aliases, tags or merge keys: the schema sees the values they resolve to
//     (anchor, tag);
//   - a DATE or TIME is a real one, 2025-02-30 is not: the schema only matches the pattern, and
//     its "format" is an annotation that draft 2020-12 does not assert by default (calendar-date);
//   - numbers are written in plain decimal digits: 0x10, 1_000, +5 or 25.0 for a whole number
//     reach the schema as the numbers they mean (hex-number);
//   - limits that need arithmetic on text: a duration that overflows, a from whose UTC year is
//     outside 1 to 9999, an integer beyond int64 (tested in TestParseErrors);
//   - a referral program's partner tiers come after every dated version (tier-before-dated), and
//     its first version is not a tier (tier-first): like a from after the first, these depend on
//     an item's place in the list, which needs prefixItems or contains counts that draft-07
//     editors read differently;
//   - a draw table's weights add up to at most 10^12 (signup-draw-total-too-large): JSON Schema
//     has no sums. Each weight's own limit is the schema's too.
var parserOnly = map[string]string{
	"duplicate-id.yaml":                   "ids unique within a program",
	"later-version-without-from.yaml":     "from on every version after the first",
	"later-rate-period-without-from.yaml": "from on every rate period after the first",
	"versions-out-of-order.yaml":          "versions in increasing from",
	"rate-periods-out-of-order.yaml":      "rate periods in increasing from",
	"duplicate-key.yaml":                  "no duplicate keys",
	"multi-document.yaml":                 "one YAML document",
	"anchor.yaml":                         "no anchors or aliases",
	"tag.yaml":                            "no tags",
	"calendar-date.yaml":                  "real calendar dates",
	"hex-number.yaml":                     "plain decimal digits",
	"tier-before-dated.yaml":              "partner tiers after every dated version",
	"tier-first.yaml":                     "a program's first version is dated, not a tier",
	"signup-draw-total-too-large.yaml":    "a draw table's total weight at most 10^12",
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open("terms.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("terms.schema.json: %v", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("terms.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("terms.schema.json") // also validates it against the 2020-12 meta-schema
	if err != nil {
		t.Fatalf("compile terms.schema.json: %v", err)
	}
	return s
}

// asJSON returns a YAML file as the JSON value an editor's schema validator sees: its first
// document, aliases resolved, numbers as written (json.Number, so multipleOf is exact).
func asJSON(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := yaml.UnmarshalWithOptions(data, &v, yaml.AllowDuplicateMapKey()); err != nil {
		t.Fatalf("decode YAML: %v", err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encode JSON: %v", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("decode JSON: %v", err)
	}
	return doc
}

func TestSchemaAgreesWithParser(t *testing.T) {
	schema := compileSchema(t)
	valid, err := filepath.Glob("testdata/valid/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range append([]string{"seed.yaml", "runpod-2025.yaml"}, valid...) {
		t.Run(path, func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Parse(path, data); err != nil {
				t.Errorf("parser rejects it: %v", err)
			}
			if err := schema.Validate(asJSON(t, data)); err != nil {
				t.Errorf("schema rejects it: %v", err)
			}
		})
	}

	broken, err := filepath.Glob("testdata/broken/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(broken) - len(parserOnly); got < 20 {
		t.Errorf("broken corpus: %d files both reject, want at least 20", got)
	}
	for name := range parserOnly {
		if _, err := os.Stat(filepath.Join("testdata/broken", name)); err != nil {
			t.Errorf("parserOnly lists %s: %v", name, err)
		}
	}
	for _, path := range broken {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			_, perr := Parse(name, data)
			if lines := errLines(perr); len(lines) != 1 {
				t.Errorf("parser: got %d problems, want exactly 1 (each broken file breaks one rule): %v", len(lines), perr)
			}
			serr := schema.Validate(asJSON(t, data))
			switch _, only := parserOnly[name]; {
			case only && serr != nil:
				t.Errorf("schema rejects it, but parserOnly says only the parser can: %v", serr)
			case !only && serr == nil:
				t.Errorf("schema accepts it; the parser says: %v", perr)
			case !only:
				// Both reject, and at the same place: the schema reports a value on the path of
				// the parser's problem (the parent of a missing or unknown key).
				var pe *Error
				if !errors.As(perr, &pe) {
					t.Fatalf("parser: %v is not an *Error", perr)
				}
				want := pathSegments(pe.Path)
				var ve *jsonschema.ValidationError
				if !errors.As(serr, &ve) {
					t.Fatalf("schema: %v is not a *jsonschema.ValidationError", serr)
				}
				if !reportsUnder(ve, want) {
					t.Errorf("schema rejects it elsewhere than %s (the parser's %v):\n%v", pe.Path, perr, serr)
				}
			}
		})
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	for _, want := range []reconcile.Terms{seedTerms(), runpod2025Terms(), variationsTerms(), signupAndTiersTerms()} {
		data := Marshal(want)
		got, err := Parse("marshal.yaml", data)
		if err != nil {
			t.Fatalf("Parse(Marshal(t)): %v\n%s", err, data)
		}
		if !got.Equal(want) {
			t.Errorf("Parse(Marshal(t)) differs:\ngot:\n%s\nwant:\n%s", Marshal(got), data)
		}
	}
}

var segmentPattern = regexp.MustCompile(`\.?([A-Za-z0-9_-]+)|\[([0-9]+)\]|\[("(?:[^"\\]|\\.)*")\]`)

// pathSegments splits a key path (programs.referral[0].rates[0].products["*"]) into the keys
// and indexes of a JSON pointer.
func pathSegments(path string) []string {
	var out []string
	for _, m := range segmentPattern.FindAllStringSubmatch(path, -1) {
		switch {
		case m[1] != "":
			out = append(out, m[1])
		case m[2] != "":
			out = append(out, m[2])
		default:
			key, err := strconv.Unquote(m[3])
			if err != nil {
				panic(err)
			}
			out = append(out, key)
		}
	}
	return out
}

// reportsUnder reports whether one of the innermost errors of e is about the value at path or
// about its parent (which is where a schema reports a missing or an unknown key).
func reportsUnder(e *jsonschema.ValidationError, path []string) bool {
	if len(e.Causes) == 0 {
		loc := e.InstanceLocation
		return slices.Equal(loc, path) || (len(path) > 0 && slices.Equal(loc, path[:len(path)-1]))
	}
	for _, c := range e.Causes {
		if reportsUnder(c, path) {
			return true
		}
	}
	return false
}

// TestDefaultsKeepHashes checks that saying a default out loud (payout: credits, tier: false,
// unknown_country: fixed) gives the same version, with the same hash, as leaving it out: a file
// written before SPEC 8 keeps the hashes its runs recorded (SPEC 7.3).
func TestDefaultsKeepHashes(t *testing.T) {
	const referral = "programs:\n  referral:\n    - id: seed\n      rates: [{products: {\"*\": \"0.02\"}}]\n" +
		"      window: lifetime\n      min_referrals: 25\n      min_spend_usd: \"500.00\"\n      requires_acceptance: true\n"
	const signup = "programs:\n  signup_bonus:\n    - id: b\n      min_load_usd: \"10.00\"\n      fixed_usd: \"5.00\"\n" +
		"      fixed_countries: [DE]\n      draw: [{usd: \"5.00\", weight: 1}]\n"
	tests := []struct {
		name, plain, explicit string
	}{
		{"payout credits", referral, referral + "      payout: credits\n"},
		{"tier false", referral, referral + "      tier: false\n"},
		{"unknown_country fixed", signup, signup + "      unknown_country: fixed\n"},
		{"payout credits on a disabled version", "programs:\n  template:\n    - id: x\n      enabled: false\n",
			"programs:\n  template:\n    - id: x\n      enabled: false\n      payout: credits\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := Parse("plain.yaml", []byte(tt.plain))
			if err != nil {
				t.Fatal(err)
			}
			b, err := Parse("explicit.yaml", []byte(tt.explicit))
			if err != nil {
				t.Fatal(err)
			}
			ra, rb := a.Records(), b.Records()
			if len(ra) != 1 || len(rb) != 1 || ra[0].SHA256 != rb[0].SHA256 {
				t.Errorf("hashes differ:\n%s\n%s", ra[0].Content, rb[0].Content)
			}
		})
	}
	// And what is not a default changes the hash: a version in use cannot quietly become cash.
	a, _ := Parse("a.yaml", []byte(referral))
	b, err := Parse("b.yaml", []byte(referral+"      payout: cash\n"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Records()[0].SHA256 == b.Records()[0].SHA256 {
		t.Errorf("payout: cash has the hash of credits")
	}
	// The seed's hash is the one recorded before SPEC 8 (runs in production recorded it).
	if got, want := a.Records()[0].SHA256[:12], "0f8ccbeead70"; got != want {
		t.Errorf("referral seed hash %s, want %s", got, want)
	}
}

func TestDescribe(t *testing.T) {
	runpod := runpod2025Terms()
	variety := signupAndTiersTerms()
	tests := []struct {
		terms   reconcile.Terms
		program reconcile.Program
		id      string
		want    string
	}{
		{runpod, reconcile.Referral, "affiliate-2025",
			"partner tier (by enrollment): pod 10%, serverless 10%, other products nothing; 6mo window; paid in cash"},
		{runpod, reconcile.SignupBonus, "runpod-2025-06",
			"referrer and referred user each get a bonus once the referred user's loads reach 10.00 USD; " +
				"5.00 USD in 32 fixed countries, elsewhere a draw of 5.00 (85%), 10.00 (11%), 25.00 (2.5%), 50.00 (1%), 100.00 (0.4%), 500.00 (0.1%); " +
				"a null or unknown country gets 5.00 USD; new accounts only (created at most 24h before the referral)"},
		{variety, reconcile.Referral, "gold",
			"partner tier (by enrollment): pod 10%, serverless 10%, other products nothing at first, then 12% of every product from 2027-01-01; " +
				"180d window; capped at 50000.00 USD; paid in cash"},
		{variety, reconcile.Referral, "silver", "disabled: earns nothing"},
		{variety, reconcile.Template, "seed", "1% of pod; from 0 runtime seconds; paid in cash"},
		{variety, reconcile.SignupBonus, "eu-only",
			"referrer and referred user each get a bonus once the referred user's loads reach 10.00 USD; " +
				"5.00 USD in 3 fixed countries, elsewhere a draw of 5.00 (100%); a null or unknown country gets 5.00 USD"},
		{variety, reconcile.SignupBonus, "everyone-draws",
			"referrer and referred user each get a bonus once the referred user's loads reach 25.00 USD; " +
				"a draw of 1.00 (>99.99%), 1000000.00 (<0.01%) in every known country; a null or unknown country draws; " +
				"new accounts only (created at most 7d before the referral); paid in cash"},
		{variety, reconcile.SignupBonus, "paused", "disabled: earns nothing"},
		{variety, reconcile.SignupBonus, "nope", "no such version"},
		{variety, reconcile.Program("affiliate"), "gold", "no such program"},
	}
	for _, tt := range tests {
		t.Run(string(tt.program)+"/"+tt.id, func(t *testing.T) {
			if got := Describe(tt.terms, tt.program, tt.id); got != tt.want {
				t.Errorf("Describe(%s, %s):\ngot  %s\nwant %s", tt.program, tt.id, got, tt.want)
			}
		})
	}
}
