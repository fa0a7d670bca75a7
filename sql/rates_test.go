package sqlstore

import (
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/runpod/creditrecon/reconcile"
	"github.com/runpod/creditrecon/terms"
)

// TestExpand: a plan with one class and one bucket for the rows a query reads renders them as
// constants, which the planner can count; any other plan renders the expressions, with the plan
// as SQL literals. (That the rendered queries price usage right is what the sums in the jobs and
// command tests check, under the built-in terms and under random ones.)
func TestExpand(t *testing.T) {
	const query = "{{class}} | {{bucket}} | {{products}} | {{tiers}}"
	runpod, err := terms.Load("../terms/runpod-2025.yaml")
	if err != nil {
		t.Fatal(err)
	}
	seed := reconcile.DefaultParams().Terms()
	for _, tc := range []struct {
		name  string
		plan  ratePlan
		named bool
		want  []string
	}{
		// One referral rate for every product; serverless counting is not a class any more.
		{"seed referral", referralPlan(seed), false, []string{"0 | 0 | ARRAY[]::text[] | false"}},
		// Template usage of pod and serverless only, at one rate: class 1 for every row read.
		{"seed template", templatePlan(seed), true, []string{"1 | 0 | ARRAY['pod', 'serverless']::text[]"}},
		// The same plan for a query that reads every product needs the expression.
		{"seed template, every product read", templatePlan(seed), false, []string{
			"coalesce((ARRAY[1, 1]::integer[])[array_position(ARRAY['pod', 'serverless']::text[], e.product)], 0)"}},
		// RunPod 2025: pod and serverless at their own rates, the rest at none.
		{"runpod referral", referralPlan(runpod), false, []string{
			"coalesce((ARRAY[1, 2]::integer[])[array_position(ARRAY['pod', 'serverless']::text[], e.product)], 0) | 0 |",
			"| true"}}, // the affiliate tier
		// A rate period from a date: usage before and after it is priced apart.
		{"rate change", referralPlan(reconcile.Terms{Referral: []reconcile.ReferralVersion{{
			Version: reconcile.Version{ID: "v1", Enabled: true},
			Rates: []reconcile.RatePeriod{
				{Rates: map[string]decimal.Decimal{reconcile.AnyProduct: decimal.RequireFromString("0.05")}},
				{From: time.Date(2025, 6, 16, 0, 0, 0, 0, time.UTC), Rates: map[string]decimal.Decimal{reconcile.AnyProduct: decimal.RequireFromString("0.03")}},
			}}}}), false, []string{"0 | width_bucket(e.occurred_at, ARRAY['2025-06-16T00:00:00Z']::timestamptz[]) |"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.plan.expand(query, tc.named)
			for _, want := range tc.want {
				if !strings.Contains(got, want) {
					t.Errorf("expand: got %q, want it to contain %q", got, want)
				}
			}
			if strings.Contains(got, "{{") {
				t.Errorf("expand left a placeholder: %q", got)
			}
		})
	}
}

// TestExpandQuotes: a product name is a literal, quoted.
func TestExpandQuotes(t *testing.T) {
	plan := ratePlan{products: []string{"it's"}, classes: []int{1}}
	if got, want := plan.expand("{{products}}", true), `ARRAY['it''s']::text[]`; got != want {
		t.Errorf("expand: got %q, want %q", got, want)
	}
}
