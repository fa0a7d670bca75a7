package reconcile_test

import (
	"fmt"
	"time"

	"github.com/runpod/creditrecon/reconcile"
	"github.com/shopspring/decimal"
)

// The seed's Template Program example: 20 users run a template for a week at $0.54/hour.
// The creator earns 1% of $1,814.40, $18.144; $18.14 is granted and $0.004 carries forward.
func ExampleParams_EvaluateTemplate() {
	p := reconcile.DefaultParams()
	d := p.EvaluateTemplate(reconcile.TemplateTotals{
		TemplateID:     "tpl-comfyui",
		CreatorID:      "alice",
		RuntimeSeconds: 20 * 168 * 3600,
		Spend:          decimal.RequireFromString("1814.40"),
	})
	fmt.Println("earned:", d.Earned, "target:", d.Target.StringFixed(2), "owed:", d.Owed.StringFixed(2), "status:", d.Status)

	g, _ := d.Grant(time.Date(2025, 3, 2, 0, 0, 0, 0, time.UTC))
	fmt.Println("grant:", g.Amount.StringFixed(2), "to", g.BeneficiaryID, "key", g.IdempotencyKey)

	// The next night 60 cents more of runtime brings earnings to $18.15: one more cent is owed.
	d = p.EvaluateTemplate(reconcile.TemplateTotals{
		TemplateID:     "tpl-comfyui",
		CreatorID:      "alice",
		RuntimeSeconds: 20*168*3600 + 4000,
		Spend:          decimal.RequireFromString("1815.00"),
		Granted:        g.Amount,
	})
	fmt.Println("earned:", d.Earned, "owed:", d.Owed.StringFixed(2))
	// Output:
	// earned: 18.144 target: 18.14 owed: 18.14 status: granted
	// grant: 18.14 to alice key template:tpl-comfyui:0.00
	// earned: 18.15 owed: 0.01
}

// A grant's key is its program, its escaped account (and role) and what the account had been
// granted before it.
func ExampleIdempotencyKey() {
	fmt.Println(reconcile.IdempotencyKey(reconcile.Referral, "alice", "", decimal.RequireFromString("40")))
	fmt.Println(reconcile.IdempotencyKey(reconcile.Template, "tpl,1", "", decimal.Zero))
	fmt.Println(reconcile.IdempotencyKey(reconcile.ServerlessReferral, "bob", reconcile.RoleReferrer, decimal.Zero))
	fmt.Println(reconcile.IdempotencyKey(reconcile.Referral, "a:b/c d", "", decimal.RequireFromString("5.5")))
	// Output:
	// referral:alice:40.00
	// template:tpl%2C1:0.00
	// serverless_referral:bob/referrer:0.00
	// referral:a%3Ab%2Fc+d:5.50
}
