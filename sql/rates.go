package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/shopspring/decimal"

	"github.com/runpod/creditrecon/reconcile"
)

// A rate plan is a run's terms in the form one aggregate query can apply to millions of usage
// rows cheaply. Each usage row falls into a product class and a period bucket:
//
//   - the bucket is width_bucket(occurred_at, bounds), where bounds are every date on which some
//     version's rate (or counted products) changes, so that within a bucket every version has one
//     rate period in force;
//   - the class groups the products that every version treats alike in every bucket; class 0 is
//     every product the terms do not name (and those they treat like it).
//
// The query sums usage per account, class and bucket, then joins run_rates, which holds the rate
// of each (version, class, bucket): earned is the exact sum of amount × rate, and the rows and
// spend that count are those with a rate. With the built-in terms each side has one class and
// one bucket, and the plan's expressions are constants (see expand), which lets the planner see
// that it makes one group per account.
type ratePlan struct {
	products []string // the products of a class other than 0
	classes  []int    // classes[i] is the class of products[i]
	bounds   []time.Time
	rates    []rateRow
	tiers    bool // some version is a partner tier (the referral side)
}

type rateRow struct {
	program reconcile.Program
	termsID string
	class   int
	bucket  int
	rate    decimal.Decimal
}

// rateSource is one version's rule: the rate of a product in the bucket that starts at start,
// and false when usage of that product there does not count.
type rateSource struct {
	program reconcile.Program
	termsID string
	rate    func(product string, start time.Time) (decimal.Decimal, bool)
}

// referralPlan is the plan of the referral-side aggregate: the Referral Program's rates. Which
// usage counts toward a serverless bonus is not part of it: each referral's binding carries its
// Serverless Referral Program version's products (see bindings_insert).
func referralPlan(t reconcile.Terms) ratePlan {
	var sources []rateSource
	var bounds []time.Time
	var named []string
	for _, v := range t.Referral {
		sources = append(sources, rateSource{reconcile.Referral, v.ID, periodRate(v.Rates, nil)})
		for _, p := range v.Rates {
			bounds = append(bounds, p.From)
			for product := range p.Rates {
				named = append(named, product)
			}
		}
	}
	plan := newRatePlan(sources, bounds, named)
	plan.tiers = slices.ContainsFunc(t.Referral, func(v reconcile.ReferralVersion) bool { return v.Tier })
	return plan
}

// templatePlan is the plan of the template aggregate.
func templatePlan(t reconcile.Terms) ratePlan {
	var sources []rateSource
	var bounds []time.Time
	var named []string
	for _, v := range t.Template {
		sources = append(sources, rateSource{reconcile.Template, v.ID, periodRate(v.Rates, v.Products)})
		for _, p := range v.Rates {
			bounds = append(bounds, p.From)
		}
		named = append(named, v.Products...)
	}
	return newRatePlan(sources, bounds, named)
}

// periodRate is the rate of a product under rate periods: the period in force at start, and its
// rate for the product, or for any product when products (a template version's) lists it.
func periodRate(periods []reconcile.RatePeriod, products []string) func(string, time.Time) (decimal.Decimal, bool) {
	return func(product string, start time.Time) (decimal.Decimal, bool) {
		var in *reconcile.RatePeriod
		for i, p := range periods {
			if p.From.IsZero() || !p.From.After(start) {
				in = &periods[i]
			}
		}
		if in == nil {
			return decimal.Decimal{}, false
		}
		if products != nil {
			if !slices.Contains(products, product) {
				return decimal.Decimal{}, false
			}
			product = reconcile.AnyProduct
		}
		return in.Rate(product)
	}
}

// newRatePlan classes the named products by how the sources treat them in each bucket.
func newRatePlan(sources []rateSource, bounds []time.Time, named []string) ratePlan {
	var plan ratePlan
	bounds = slices.DeleteFunc(bounds, time.Time.IsZero)
	slices.SortFunc(bounds, time.Time.Compare)
	plan.bounds = slices.CompactFunc(bounds, time.Time.Equal)
	// A bucket's start: the first bucket starts at the beginning of time.
	starts := append([]time.Time{time.Unix(-1<<40, 0)}, plan.bounds...)
	signature := func(product string) string {
		var b strings.Builder
		for _, src := range sources {
			for _, start := range starts {
				if r, ok := src.rate(product, start); ok {
					b.WriteString(r.String())
				}
				b.WriteByte('|')
			}
		}
		return b.String()
	}
	// Class 0 is every product the terms do not name; a product that never appears in a rate
	// table is treated like it. The marker cannot be a product of class > 0: "*" is not named.
	represent := []string{reconcile.AnyProduct}
	classOf := map[string]int{signature(reconcile.AnyProduct): 0}
	slices.Sort(named)
	for _, product := range slices.Compact(named) {
		if product == reconcile.AnyProduct {
			continue
		}
		sig := signature(product)
		c, ok := classOf[sig]
		if !ok {
			c = len(represent)
			classOf[sig] = c
			represent = append(represent, product)
		}
		if c != 0 {
			plan.products = append(plan.products, product)
			plan.classes = append(plan.classes, c)
		}
	}
	for _, src := range sources {
		for class, product := range represent {
			for bucket, start := range starts {
				if r, ok := src.rate(product, start); ok {
					plan.rates = append(plan.rates, rateRow{src.program, src.termsID, class, bucket, r})
				}
			}
		}
	}
	return plan
}

// expand writes a rate plan into an aggregate query: {{products}} is the SQL array of the
// products of a class other than 0, {{class}} a usage row e's product class and {{bucket}} its
// period bucket, {{tiers}} whether usage may earn under a partner tier (false: the planner folds
// the tier's sums away). Class and bucket are constants when the plan has one value for the rows
// the query reads (named: the query reads only the plan's products), so that the planner, which
// counts the distinct products and dates behind an expression, can tell how few groups the
// aggregate makes. The plan is literal SQL, not parameters: a parameter that a constant replaces
// would be left without a type.
func (p ratePlan) expand(query string, named bool) string {
	products, classes, bounds := make([]string, len(p.products)), make([]string, len(p.classes)), make([]string, len(p.bounds))
	for i, product := range p.products {
		products[i] = pq.QuoteLiteral(product)
	}
	for i, c := range p.classes {
		classes[i] = fmt.Sprint(c)
	}
	for i, b := range p.bounds {
		bounds[i] = pq.QuoteLiteral(b.UTC().Format(time.RFC3339Nano))
	}
	array := func(elements []string, typ string) string {
		return fmt.Sprintf("ARRAY[%s]::%s[]", strings.Join(elements, ", "), typ)
	}
	class := fmt.Sprintf("coalesce((%s)[array_position(%s, e.product)], 0)", array(classes, "integer"), array(products, "text"))
	switch distinct := slices.Compact(slices.Sorted(slices.Values(p.classes))); {
	case len(distinct) == 0:
		class = "0"
	case named && len(distinct) == 1:
		class = fmt.Sprint(distinct[0])
	}
	bucket := fmt.Sprintf("width_bucket(e.occurred_at, %s)", array(bounds, "timestamptz"))
	if len(p.bounds) == 0 {
		bucket = "0"
	}
	return strings.NewReplacer("{{products}}", array(products, "text"), "{{class}}", class, "{{bucket}}", bucket,
		"{{tiers}}", fmt.Sprint(p.tiers)).Replace(query)
}

// writeTerms records under run the versions of every program in binding order and the rates of
// both plans.
func writeTerms(ctx context.Context, tx *sqlx.Tx, run int64, t reconcile.Terms, plans ...ratePlan) error {
	type version struct {
		program reconcile.Program
		v       reconcile.Version
		tier    bool
		window  reconcile.Window
		maxAge  *time.Duration
		// products: a template or serverless version's; usageFrom: a serverless version's.
		products  []string
		usageFrom time.Time
	}
	var versions []version
	for _, v := range t.Referral {
		versions = append(versions, version{reconcile.Referral, v.Version, v.Tier, v.Window, v.MaxAccountAge, nil, time.Time{}})
	}
	for _, v := range t.Template {
		versions = append(versions, version{reconcile.Template, v.Version, false, reconcile.Window{}, nil, v.Products, time.Time{}})
	}
	for _, v := range t.Serverless {
		versions = append(versions, version{reconcile.ServerlessReferral, v.Version, false, v.Window, v.MaxAccountAge, v.Products, v.UsageFrom})
	}
	for _, v := range t.Signup {
		versions = append(versions, version{reconcile.SignupBonus, v.Version, false, reconcile.Window{}, v.MaxAccountAge, nil, time.Time{}})
	}
	n := len(versions)
	programs, ids, froms, tos := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	enabled, months, days, ages := make([]bool, n), make([]int64, n), make([]int64, n), make([]any, n)
	products, usageFroms := make([]any, n), make([]any, n)
	for i, v := range versions {
		programs[i], ids[i], enabled[i] = string(v.program), v.v.ID, v.v.Enabled
		months[i], days[i] = int64(v.window.Months), int64(v.window.Days)
		// A version binds the starts from its from to the next dated version's; a partner tier
		// binds none (an empty range): only enrollments route usage to it.
		froms[i], tos[i] = "-infinity", "infinity"
		switch {
		case v.tier:
			froms[i] = "infinity"
		case !v.v.From.IsZero():
			froms[i] = v.v.From.UTC().Format(time.RFC3339Nano)
		}
		for _, next := range versions[i+1:] {
			if !v.tier && next.program == v.program && !next.tier {
				tos[i] = next.v.From.UTC().Format(time.RFC3339Nano)
				break
			}
		}
		if v.maxAge != nil {
			ages[i] = fmt.Sprintf("%d microseconds", v.maxAge.Microseconds())
		}
		if v.products != nil {
			// An array of arrays would flatten in unnest: a version's products go as one JSON array.
			list, err := json.Marshal(v.products)
			if err != nil {
				return fmt.Errorf("record the terms of run %d: %w", run, err)
			}
			products[i] = string(list)
		}
		if !v.usageFrom.IsZero() {
			usageFroms[i] = v.usageFrom.UTC().Format(time.RFC3339Nano)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO run_terms (run_id, program, terms_id, valid_from, valid_to, enabled,
		window_months, window_days, max_account_age, products, usage_from)
		SELECT $1, program, terms_id, valid_from, valid_to, enabled, window_months, window_days, max_account_age,
		       CASE WHEN products IS NOT NULL THEN ARRAY(SELECT jsonb_array_elements_text(products)) END, usage_from
		  FROM unnest($2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::boolean[], $7::integer[],
		              $8::integer[], $9::interval[], $10::jsonb[], $11::timestamptz[])
		       AS v(program, terms_id, valid_from, valid_to, enabled, window_months, window_days, max_account_age,
		            products, usage_from)`,
		run, pq.Array(programs), pq.Array(ids), pq.Array(froms), pq.Array(tos), pq.BoolArray(enabled),
		pq.Array(months), pq.Array(days), pq.GenericArray{A: ages}, pq.GenericArray{A: products},
		pq.GenericArray{A: usageFroms}); err != nil {
		return fmt.Errorf("record the terms of run %d: %w", run, translate(err))
	}
	var rp, rid []string
	var rc, rb []int64
	var rr []string
	for _, plan := range plans {
		for _, r := range plan.rates {
			rp, rid = append(rp, string(r.program)), append(rid, r.termsID)
			rc, rb, rr = append(rc, int64(r.class)), append(rb, int64(r.bucket)), append(rr, r.rate.String())
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO run_rates (run_id, program, terms_id, class, bucket, rate)
		SELECT $1, * FROM unnest($2::text[], $3::text[], $4::integer[], $5::integer[], $6::numeric[])`,
		run, pq.Array(rp), pq.Array(rid), pq.Array(rc), pq.Array(rb), pq.Array(rr)); err != nil {
		return fmt.Errorf("record the rates of run %d: %w", run, translate(err))
	}
	return nil
}
