// Package terms reads the programs' terms file (SPEC 7.1): per program, a list of versions with
// effective dates, which operators change by appending a version or a rate period.
//
// Parse walks the YAML syntax tree itself rather than decoding into structs, for two reasons: every
// error can name the file, line, column and key path (terms.yaml:14:7: programs.referral[1].window:
// ...), and every amount is read from its source text as an exact decimal, so "0.1" and 0.1 are
// both exactly one tenth and no amount ever passes through float64.
//
// Dates and times in the file are UTC: a DATE (2025-06-16) is 00:00 UTC that day, and a TIME
// (RFC 3339, any offset) is converted to UTC. Unlike a cutoff given on the command line, they do
// not depend on the configured time zone, so one file means the same thing wherever it runs.
//
// The rules, beyond the shape of the file: ids match [a-z0-9][a-z0-9-]{0,39} and are unique
// within their program; every version but a program's first has a from, and froms strictly
// increase, as do the froms of a version's rate periods; rates are decimals in [0, 1]; money is a
// decimal >= 0 in whole cents; windows are lifetime, Nmo (1 to 1200) or Nd (1 to 36500); an
// enabled version has all its program's required keys, a disabled one needs only its id (and from).
// Every version may say payout: credits (the default) or cash.
//
// SPEC 8 adds two kinds of terms. A referral version with tier: true is a partner tier: it binds
// no referral by date, only the referrers enrolled into it, so it has no from, its min_referrals,
// min_spend_usd and requires_acceptance are 0, "0" and false (enrollment is its acceptance), and
// it has no max_account_age (the referral's own version decides which referrals count). Tiers
// are listed after every dated version, and a program's first version is a dated one: a tier
// changes the terms of referrals that bind to a dated version, so a program of tiers alone could
// never pay. The increasing-from rule counts the dated versions only; ids are unique across both.
// A signup_bonus version has min_load_usd and fixed_usd (> 0), fixed_countries (ISO 3166-1
// alpha-2 codes assigned to countries, upper case, no duplicates, possibly none), a non-empty draw
// table of {usd > 0, weight >= 1} whose weights add up to at most 10^12, and unknown_country
// (fixed, the default, or draw).
//
// Unknown and duplicate keys, anchors, aliases, tags and more than one YAML document are errors.
// terms.schema.json, beside this file, encodes the same rules for editors, except those it
// cannot express or that editors would misread (unique ids, froms present after the first and
// increasing, tiers after the dated versions and not first, the total weight of a draw table,
// duplicate keys, real calendar dates, the notation of numbers); the package's tests check that
// the two agree.
package terms

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
	"github.com/shopspring/decimal"

	"github.com/runpod/creditrecon/reconcile"
)

// Limits of the file's values. Each keeps dates and durations far from overflow.
const (
	maxHoldingDays = 36500 // 100 years
	maxWindowMonth = 1200  // 100 years
	maxWindowDays  = 36500 // 100 years
	maxAgeDays     = 36500 // 100 years
	// maxDrawWeight bounds a draw table's total weight (10^12 < 2^40): the draw compares
	// n × total with cumulative × 2^64 (n < 2^64), which then fit in 104 bits, so an
	// implementation in 128-bit integers, or a SQL numeric, cannot overflow.
	maxDrawWeight = 1_000_000_000_000
)

// defaultMinGrant is min_grant_usd when the file does not set it: one cent, the smallest grant.
var defaultMinGrant = decimal.New(1, -2)

// Error is one problem in a terms file, with where it is. Parse and Load return every problem
// they find, each an *Error, joined with errors.Join in file order.
type Error struct {
	File   string
	Line   int    // 1-based; 0 when the YAML parser gave no position
	Column int    // 1-based
	Path   string // key path, like programs.referral[1].window; empty for the document itself
	Msg    string
}

// Error returns the problem as file:line:column: path: message.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Load reads and parses the terms file at path; its errors name the file as path. It returns
// the error of os.ReadFile, wrapped, when the file cannot be read, and otherwise Parse's errors.
func Load(path string) (reconcile.Terms, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return reconcile.Terms{}, fmt.Errorf("read terms file: %w", err)
	}
	return Parse(path, data)
}

// Parse parses the contents of a terms file; name is the file name its errors give. When the
// file breaks any rule it returns zero Terms and every problem found, each an *Error, joined
// with errors.Join in file order (unwrap with interface{ Unwrap() []error }).
func Parse(name string, data []byte) (reconcile.Terms, error) {
	d := &decoder{name: name}
	t := d.file(data)
	if len(d.errs) > 0 {
		slices.SortStableFunc(d.errs, func(a, b *Error) int {
			return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
		})
		errs := make([]error, len(d.errs))
		for i, e := range d.errs {
			errs[i] = e
		}
		return reconcile.Terms{}, errors.Join(errs...)
	}
	return t, nil
}

// decoder walks one file's syntax tree and collects its errors.
type decoder struct {
	name string
	errs []*Error
}

func (d *decoder) errorf(n ast.Node, path, format string, args ...any) {
	line, col := position(n)
	d.errs = append(d.errs, &Error{File: d.name, Line: line, Column: col, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// position returns where n starts: for a mapping, its first key (the parser's token for a
// mapping is the first colon).
func position(n ast.Node) (line, col int) {
	switch m := n.(type) {
	case nil:
		return 0, 0
	case *ast.MappingNode:
		if !m.IsFlowStyle && len(m.Values) > 0 {
			return position(m.Values[0])
		}
	case *ast.MappingValueNode:
		if m.Key != nil {
			return position(m.Key)
		}
	case *ast.DocumentNode:
		if m.Body != nil {
			return position(m.Body)
		}
		if m.Start != nil && m.Start.Position != nil {
			return m.Start.Position.Line, m.Start.Position.Column
		}
		return 0, 0
	}
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		return tk.Position.Line, tk.Position.Column
	}
	return 0, 0
}

func (d *decoder) file(data []byte) reconcile.Terms {
	f, err := parser.ParseBytes(data, 0, parser.AllowDuplicateMapKey()) // duplicates are reported below, with their path
	if err != nil {
		e := &Error{File: d.name, Msg: "not valid YAML: " + err.Error()}
		var ye yaml.Error
		if errors.As(err, &ye) {
			e.Msg = "not valid YAML: " + ye.GetMessage()
			if tk := ye.GetToken(); tk != nil && tk.Position != nil {
				e.Line, e.Column = tk.Position.Line, tk.Position.Column
			}
		}
		d.errs = append(d.errs, e)
		return reconcile.Terms{}
	}
	var docs []*ast.DocumentNode
	for _, doc := range f.Docs {
		if doc != nil {
			docs = append(docs, doc)
		}
	}
	if len(docs) > 1 {
		d.errorf(docs[1], "", "a second YAML document (---): a terms file is one document")
	}
	if len(docs) == 0 || docs[0].Body == nil {
		d.errs = append(d.errs, &Error{File: d.name, Line: 1, Column: 1,
			Msg: "empty document: a terms file sets at least programs (start from terms/seed.yaml)"})
		return reconcile.Terms{}
	}
	return d.terms(docs[0].Body)
}

func (d *decoder) terms(n ast.Node) reconcile.Terms {
	t := reconcile.Terms{MinGrant: defaultMinGrant}
	o, ok := d.object(n, "", "the terms file", "holding_days", "min_grant_usd", "programs")
	if !ok {
		return t
	}
	if v, p, ok := o.get("holding_days"); ok {
		t.HoldingDays = int(d.integer(v, p, 0, maxHoldingDays))
	}
	if v, p, ok := o.get("min_grant_usd"); ok {
		t.MinGrant = d.money(v, p, true)
	}
	v, p, ok := o.get("programs")
	if !ok {
		d.missing(o, "programs", "a terms file lists at least one program's versions")
		return t
	}
	programs, ok := d.object(v, p, "programs", string(reconcile.Referral), string(reconcile.Template),
		string(reconcile.ServerlessReferral), string(reconcile.SignupBonus))
	if !ok {
		return t
	}
	if len(programs.vals) == 0 {
		d.errorf(v, p, "no program: want at least one of referral, template, serverless_referral, signup_bonus")
	}
	if v, p, ok := programs.get(string(reconcile.Referral)); ok {
		t.Referral = versions(d, v, p, referralSpec)
	}
	if v, p, ok := programs.get(string(reconcile.Template)); ok {
		t.Template = versions(d, v, p, templateSpec)
	}
	if v, p, ok := programs.get(string(reconcile.ServerlessReferral)); ok {
		t.Serverless = versions(d, v, p, serverlessSpec)
	}
	if v, p, ok := programs.get(string(reconcile.SignupBonus)); ok {
		t.Signup = versions(d, v, p, signupSpec)
	}
	return t
}

// program describes one program's versions: their keys beyond id, from, enabled and payout,
// those an enabled version must have, and how to read them. When keys has tier (SPEC 8.2),
// versions reads it, since it decides whether the version has a from, and passes it to read.
type program[V any] struct {
	name     string
	keys     []string
	required []string
	read     func(d *decoder, o *object, v reconcile.Version, tier bool) V
}

var referralSpec = program[reconcile.ReferralVersion]{
	name:     "referral",
	keys:     []string{"rates", "window", "min_referrals", "min_spend_usd", "requires_acceptance", "max_account_age", "cap_usd", "tier"},
	required: []string{"rates", "window", "min_referrals", "min_spend_usd", "requires_acceptance"},
	read: func(d *decoder, o *object, v reconcile.Version, tier bool) reconcile.ReferralVersion {
		r := reconcile.ReferralVersion{Version: v, Tier: tier}
		if n, p, ok := o.get("rates"); ok {
			r.Rates = d.ratePeriods(n, p, "products", func(o *object) map[string]decimal.Decimal {
				n, p, ok := o.get("products")
				if !ok {
					return nil
				}
				return d.productRates(n, p)
			})
		}
		if n, p, ok := o.get("window"); ok {
			r.Window = d.window(n, p)
		}
		// A tier's enrollment is its acceptance (SPEC 8.2): the operator enrolls the referrers who
		// qualify, so a tier has no thresholds of its own.
		const enrolled = "enrollment is a tier's acceptance (enroll the referrers who qualify with creditrecon enroll)"
		if n, p, ok := o.get("min_referrals"); ok {
			before := len(d.errs)
			r.MinReferrals = d.integer(n, p, 0, 1<<63-1)
			if tier && len(d.errs) == before && r.MinReferrals != 0 {
				d.errorf(n, p, "must be 0 in a tier version, got %d: %s", r.MinReferrals, enrolled)
			}
		}
		if n, p, ok := o.get("min_spend_usd"); ok {
			before := len(d.errs)
			r.MinSpend = d.money(n, p, false)
			if tier && len(d.errs) == before && !r.MinSpend.IsZero() {
				d.errorf(n, p, `must be "0" in a tier version, got %s: %s`, r.MinSpend.StringFixed(2), enrolled)
			}
		}
		if n, p, ok := o.get("requires_acceptance"); ok {
			before := len(d.errs)
			r.RequiresAcceptance = d.boolean(n, p)
			if tier && len(d.errs) == before && r.RequiresAcceptance {
				d.errorf(n, p, "must be false in a tier version: %s", enrolled)
			}
		}
		if n, p, ok := o.get("max_account_age"); ok {
			if tier {
				d.errorf(n, p, "not in a tier version: the dated version each referral binds to decides whether it counts")
			} else {
				age := d.age(n, p)
				r.MaxAccountAge = &age
			}
		}
		if n, p, ok := o.get("cap_usd"); ok {
			c := d.money(n, p, true)
			r.Cap = &c
		}
		return r
	},
}

var templateSpec = program[reconcile.TemplateVersion]{
	name:     "template",
	keys:     []string{"products", "rates", "min_runtime_seconds", "cap_usd"},
	required: []string{"products", "rates", "min_runtime_seconds"},
	read: func(d *decoder, o *object, v reconcile.Version, _ bool) reconcile.TemplateVersion {
		t := reconcile.TemplateVersion{Version: v}
		if n, p, ok := o.get("products"); ok {
			t.Products = d.products(n, p)
		}
		if n, p, ok := o.get("rates"); ok {
			t.Rates = d.ratePeriods(n, p, "rate", func(o *object) map[string]decimal.Decimal {
				n, p, ok := o.get("rate")
				if !ok {
					return nil
				}
				return map[string]decimal.Decimal{reconcile.AnyProduct: d.rate(n, p)}
			})
		}
		if n, p, ok := o.get("min_runtime_seconds"); ok {
			t.MinRuntimeSeconds = d.integer(n, p, 0, 1<<63-1)
		}
		if n, p, ok := o.get("cap_usd"); ok {
			c := d.money(n, p, true)
			t.Cap = &c
		}
		return t
	},
}

var serverlessSpec = program[reconcile.ServerlessVersion]{
	name:     "serverless_referral",
	keys:     []string{"products", "threshold_usd", "referrer_bonus_usd", "referred_bonus_usd", "window", "max_account_age"},
	required: []string{"products", "threshold_usd", "referrer_bonus_usd", "referred_bonus_usd"},
	read: func(d *decoder, o *object, v reconcile.Version, _ bool) reconcile.ServerlessVersion {
		s := reconcile.ServerlessVersion{Version: v}
		if n, p, ok := o.get("products"); ok {
			s.Products = d.products(n, p)
		}
		if n, p, ok := o.get("threshold_usd"); ok {
			s.Threshold = d.money(n, p, false)
		}
		if n, p, ok := o.get("referrer_bonus_usd"); ok {
			s.ReferrerBonus = d.money(n, p, false)
		}
		if n, p, ok := o.get("referred_bonus_usd"); ok {
			s.ReferredBonus = d.money(n, p, false)
		}
		if n, p, ok := o.get("window"); ok {
			s.Window = d.window(n, p)
		}
		if n, p, ok := o.get("max_account_age"); ok {
			age := d.age(n, p)
			s.MaxAccountAge = &age
		}
		return s
	},
}

var signupSpec = program[reconcile.SignupVersion]{
	name:     "signup_bonus",
	keys:     []string{"max_account_age", "min_load_usd", "fixed_usd", "fixed_countries", "draw", "unknown_country"},
	required: []string{"min_load_usd", "fixed_usd", "fixed_countries", "draw"},
	read: func(d *decoder, o *object, v reconcile.Version, _ bool) reconcile.SignupVersion {
		// unknown_country is always set, so that every version's canonical content says it.
		s := reconcile.SignupVersion{Version: v, UnknownCountry: reconcile.UnknownFixed}
		if n, p, ok := o.get("max_account_age"); ok {
			age := d.age(n, p)
			s.MaxAccountAge = &age
		}
		if n, p, ok := o.get("min_load_usd"); ok {
			s.MinLoad = d.money(n, p, true)
		}
		if n, p, ok := o.get("fixed_usd"); ok {
			s.Fixed = d.money(n, p, true)
		}
		if n, p, ok := o.get("fixed_countries"); ok {
			s.FixedCountries = d.countries(n, p)
		}
		if n, p, ok := o.get("draw"); ok {
			s.Draw = d.drawTable(n, p)
		}
		if n, p, ok := o.get("unknown_country"); ok {
			u, ok := d.str(n, p, "fixed or draw")
			switch {
			case !ok:
			case u == reconcile.UnknownFixed || u == reconcile.UnknownDraw:
				s.UnknownCountry = u
			default:
				d.errorf(n, p, "%q is not fixed or draw: what a recipient of null or unknown country gets", u)
			}
		}
		return s
	},
}

// versions reads a program's list of versions: each one's id, from, enabled, payout and tier,
// then its program's keys. Ids are unique within the program; the dated versions come first, in
// strictly increasing from, and the tiers, which have no from, after them.
func versions[V any](d *decoder, n ast.Node, path string, spec program[V]) []V {
	items, ok := d.list(n, path, "a list of "+spec.name+" versions")
	if !ok {
		return nil
	}
	if len(items) == 0 {
		d.errorf(n, path, "empty: want at least one version (or leave the program out)")
	}
	keys := append(append([]string{"id", "from", "enabled"}, spec.keys...), "payout")
	ids := map[string]int{} // id -> line of its first use
	var out []V
	var seq sequence
	dated := 0      // dated versions so far
	firstTier := "" // the path of the first tier version
	for i, item := range items {
		ip := index(path, i)
		o, ok := d.object(item, ip, "a "+spec.name+" version", keys...)
		if !ok {
			seq.broken()
			dated++
			continue
		}
		var v reconcile.Version
		if n, p, ok := o.get("id"); ok {
			id, ok := d.str(n, p, "an id like seed or runpod-2025-06")
			line, dup := ids[id]
			switch {
			case !ok:
			case !idPattern.MatchString(id):
				d.errorf(n, p, "%q is not an id: lowercase letters, digits and -, starting with a letter or digit, at most 40", id)
			case dup:
				d.errorf(n, p, "duplicate id %q (first on line %d): ids are unique within a program", id, line)
			default:
				ids[id], _ = position(n)
			}
			v.ID = id
		} else {
			d.missing(o, "id", "every version has an id, unique within its program")
		}
		tier, tierOK := false, true
		if n, p, ok := o.get("tier"); ok {
			before := len(d.errs)
			tier = d.boolean(n, p)
			tierOK = len(d.errs) == before
			if tier && dated == 0 {
				d.errorf(n, p, "the first version of a program is a dated one, not a tier: a tier changes the terms of referrals bound to a dated version (list tiers after the dated versions)")
			}
		}
		switch {
		case !tierOK:
			// Neither a tier nor a dated version for sure: its from, and the next one's order,
			// cannot be checked.
			seq.broken()
			dated++
		case tier:
			if n, p, ok := o.get("from"); ok {
				d.errorf(n, p, "not in a tier version: a tier binds no referral by date, only the referrers enrolled into it, each from its enrollment date (creditrecon enroll)")
			}
			if firstTier == "" {
				firstTier = ip
			}
		default:
			if firstTier != "" {
				d.errorf(item, ip, "a dated version after the tier version %s: tier versions are listed after every dated version", firstTier)
			}
			v.From = seq.from(d, o, dated, "version", "the date from which it binds new relationships")
			dated++
		}
		v.Enabled = true
		enabledOK := true
		if n, p, ok := o.get("enabled"); ok {
			before := len(d.errs)
			v.Enabled = d.boolean(n, p)
			enabledOK = len(d.errs) == before
		}
		if n, p, ok := o.get("payout"); ok {
			v.Payout = d.payout(n, p)
		}
		if v.Enabled && enabledOK {
			for _, k := range spec.required {
				if _, _, ok := o.get(k); !ok {
					d.missing(o, k, "an enabled "+spec.name+" version needs it (or set enabled: false)")
				}
			}
		}
		out = append(out, spec.read(d, o, v, tier))
	}
	return out
}

// sequence checks the froms of a list (versions, rate periods): optional on the first item,
// required on the others, and strictly increasing.
type sequence struct {
	prev     time.Time
	prevText string
	unknown  bool // the previous from did not parse: the next cannot be compared
}

func (s *sequence) broken() { s.unknown = true }

// from reads item i's from and checks it against the previous item's.
func (s *sequence) from(d *decoder, o *object, i int, what, meaning string) time.Time {
	n, p, ok := o.get("from")
	if !ok {
		if i > 0 {
			d.missing(o, "from", "every "+what+" after the first has one: "+meaning)
		}
		s.unknown = i > 0
		s.prev, s.prevText = time.Time{}, "since forever"
		return time.Time{}
	}
	before := len(d.errs)
	t := d.instant(n, p)
	if len(d.errs) > before {
		s.unknown = true
		return time.Time{}
	}
	text := formatTime(t)
	if i > 0 && !s.unknown && !t.After(s.prev) {
		d.errorf(n, p, "%s is not after the previous %s's from (%s): %ss are listed in increasing from", text, what, s.prevText, what)
	}
	s.prev, s.prevText, s.unknown = t, text, false
	return t
}

// ratePeriods reads a list of rate periods, each with an optional from and the keys that read
// turns into the period's rates (key names the one that carries them).
func (d *decoder) ratePeriods(n ast.Node, path, key string, read func(o *object) map[string]decimal.Decimal) []reconcile.RatePeriod {
	items, ok := d.list(n, path, "a list of rate periods")
	if !ok {
		return nil
	}
	if len(items) == 0 {
		d.errorf(n, path, "empty: want at least one rate period")
	}
	var out []reconcile.RatePeriod
	var seq sequence
	for i, item := range items {
		ip := index(path, i)
		o, ok := d.object(item, ip, "a rate period", "from", key)
		if !ok {
			seq.broken()
			continue
		}
		rp := reconcile.RatePeriod{From: seq.from(d, o, i, "rate period", "the usage date from which its rates apply")}
		if _, _, ok := o.get(key); !ok {
			d.missing(o, key, "a rate period sets its rates")
		}
		rp.Rates = read(o)
		out = append(out, rp)
	}
	return out
}

// productRates reads a product -> rate mapping; AnyProduct is every product not listed.
func (d *decoder) productRates(n ast.Node, path string) map[string]decimal.Decimal {
	entries, ok := d.entries(n, path, `a mapping of product to rate, like {pod: "0.03", "*": "0.02"}`)
	if !ok {
		return nil
	}
	if len(entries) == 0 {
		d.errorf(n, path, `empty: want at least one product and its rate ("*" for every product)`)
	}
	rates := make(map[string]decimal.Decimal, len(entries))
	for _, e := range entries {
		p := join(path, e.key)
		if e.key != reconcile.AnyProduct && !productPattern.MatchString(e.key) {
			d.errorf(e.keyNode, p, "%q is not a product: letters, digits and _ . : / -, at most 64, or \"*\" for every other product", e.key)
		}
		rates[e.key] = d.rate(e.value, p)
	}
	return rates
}

// products reads a non-empty list of distinct product names.
func (d *decoder) products(n ast.Node, path string) []string {
	items, ok := d.list(n, path, "a list of products, like [pod, serverless]")
	if !ok {
		return nil
	}
	if len(items) == 0 {
		d.errorf(n, path, "empty: want at least one product")
	}
	out := make([]string, 0, len(items))
	for i, item := range items {
		p := index(path, i)
		name, ok := d.str(item, p, "a product name like pod")
		switch {
		case !ok:
		case !productPattern.MatchString(name):
			d.errorf(item, p, "%q is not a product: letters, digits and _ . : / -, at most 64", name)
		case slices.Contains(out, name):
			d.errorf(item, p, "duplicate product %q", name)
		}
		out = append(out, name)
	}
	return out
}

// payout reads how a version's grants are paid: "" for credits (the default, so that a file
// that says it keeps the hashes of one that does not), or reconcile.PayoutCash.
func (d *decoder) payout(n ast.Node, path string) string {
	s, ok := d.str(n, path, "credits or cash")
	switch {
	case !ok:
	case s == reconcile.PayoutCredits:
	case s == reconcile.PayoutCash:
		return reconcile.PayoutCash
	default:
		d.errorf(n, path, "%q is not a payout: credits (the default) or cash", s)
	}
	return ""
}

// countries reads a list, possibly empty, of distinct ISO 3166-1 alpha-2 codes assigned to
// countries, in upper case.
func (d *decoder) countries(n ast.Node, path string) []string {
	items, ok := d.list(n, path, "a list of country codes, like [DE, FR] (or [] for none)")
	if !ok {
		return nil
	}
	out := make([]string, 0, len(items))
	for i, item := range items {
		p := index(path, i)
		code, ok := d.str(item, p, "an ISO 3166-1 alpha-2 country code like DE")
		upper, known := reconcile.NormalizeCountry(code)
		switch {
		case !ok:
		case known && upper != code:
			d.errorf(item, p, "%q is not a country code as the file writes it: write %q (upper case, no spaces)", code, upper)
		case !known:
			d.errorf(item, p, "%q is not an ISO 3166-1 alpha-2 code assigned to a country, like DE (EU, XK, ZZ and other codes that name no country are not)", code)
		case slices.Contains(out, code):
			d.errorf(item, p, "duplicate country %q", code)
		}
		out = append(out, code)
	}
	return out
}

// drawTable reads a signup bonus's draw table: a non-empty list of amounts > 0 with whole-number
// weights >= 1, whose total is at most maxDrawWeight.
func (d *decoder) drawTable(n ast.Node, path string) []reconcile.DrawEntry {
	items, ok := d.list(n, path, `a list of {usd: "5.00", weight: 8500} entries`)
	if !ok {
		return nil
	}
	if len(items) == 0 {
		d.errorf(n, path, "empty: want at least one amount and its weight")
	}
	out := make([]reconcile.DrawEntry, 0, len(items))
	var total int64 // stops growing past maxDrawWeight, so it never overflows
	for i, item := range items {
		ip := index(path, i)
		o, ok := d.object(item, ip, "a draw entry", "usd", "weight")
		if !ok {
			continue
		}
		var e reconcile.DrawEntry
		if n, p, ok := o.get("usd"); ok {
			e.USD = d.money(n, p, true)
		} else {
			d.missing(o, "usd", "a draw entry is an amount and its weight")
		}
		if n, p, ok := o.get("weight"); ok {
			before := len(d.errs)
			e.Weight = d.integer(n, p, 1, maxDrawWeight)
			if len(d.errs) == before && total <= maxDrawWeight {
				total += e.Weight
			}
		} else {
			d.missing(o, "weight", "a draw entry is an amount and its weight")
		}
		out = append(out, e)
	}
	if total > maxDrawWeight {
		d.errorf(n, path, "the weights add up to more than %d: scale them down", int64(maxDrawWeight))
	}
	return out
}

var (
	idPattern      = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,39}$`)
	productPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}$`)
	keyPattern     = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
)

// join returns the path of key inside path: programs.referral, products["*"].
func join(path, key string) string {
	switch {
	case !keyPattern.MatchString(key):
		return path + "[" + strconv.Quote(key) + "]"
	case path == "":
		return key
	default:
		return path + "." + key
	}
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// object is a mapping with known keys.
type object struct {
	path string
	node ast.Node // where missing keys are reported
	vals map[string]ast.Node
}

// get returns the value of key and its path, and whether the key is present.
func (o *object) get(key string) (ast.Node, string, bool) {
	n, ok := o.vals[key]
	return n, join(o.path, key), ok
}

// object reads a mapping whose keys must be among keys; what names it in errors.
func (d *decoder) object(n ast.Node, path, what string, keys ...string) (*object, bool) {
	entries, ok := d.entries(n, path, what+" (a mapping)")
	if !ok {
		return nil, false
	}
	o := &object{path: path, node: n, vals: make(map[string]ast.Node, len(entries))}
	for _, e := range entries {
		if !slices.Contains(keys, e.key) {
			d.errorf(e.keyNode, join(path, e.key), "unknown key: %s has %s", what, strings.Join(keys, ", "))
			continue
		}
		o.vals[e.key] = e.value
	}
	return o, true
}

// missing reports that o lacks key; why says what it is for.
func (d *decoder) missing(o *object, key, why string) {
	d.errorf(o.node, join(o.path, key), "missing: %s", why)
}

type entry struct {
	key     string
	keyNode ast.Node
	value   ast.Node
}

// entries returns the pairs of the mapping n in file order. It reports a node that is not a
// mapping (want describes what is expected), keys that are not plain scalars, and duplicate keys,
// keeping the first.
func (d *decoder) entries(n ast.Node, path, want string) ([]entry, bool) {
	n, ok := d.value(n, path, want)
	if !ok {
		return nil, false
	}
	var pairs []*ast.MappingValueNode
	switch m := n.(type) {
	case *ast.MappingNode:
		pairs = m.Values
	case *ast.MappingValueNode:
		pairs = []*ast.MappingValueNode{m}
	default:
		d.errorf(n, path, "want %s, got %s", want, describe(n))
		return nil, false
	}
	var out []entry
	seen := map[string]int{}
	for _, mv := range pairs {
		var key string
		switch k := mv.Key.(type) {
		case *ast.StringNode:
			key = k.Value
		case *ast.IntegerNode, *ast.FloatNode:
			key = k.GetToken().Value
		case *ast.MergeKeyNode:
			d.errorf(k, path, "merge keys (<<) are not supported: write the keys out")
			continue
		default:
			d.errorf(mv, path, "a key must be a plain string, got %s", describe(mv.Key))
			continue
		}
		if line, dup := seen[key]; dup {
			d.errorf(mv.Key, join(path, key), "duplicate key (first on line %d)", line)
			continue
		}
		seen[key], _ = position(mv.Key)
		out = append(out, entry{key: key, keyNode: mv.Key, value: mv.Value})
	}
	return out, true
}

// list returns the items of the sequence n; want describes what is expected.
func (d *decoder) list(n ast.Node, path, want string) ([]ast.Node, bool) {
	n, ok := d.value(n, path, want)
	if !ok {
		return nil, false
	}
	s, ok := n.(*ast.SequenceNode)
	if !ok {
		d.errorf(n, path, "want %s, got %s", want, describe(n))
		return nil, false
	}
	return s.Values, true
}

// value reports what a terms file never uses in place of a value: nothing, anchors, aliases and
// tags (plain values keep the file readable, and keep what an editor's schema sees the same as
// what Parse reads).
func (d *decoder) value(n ast.Node, path, want string) (ast.Node, bool) {
	switch n.(type) {
	case nil, *ast.NullNode:
		d.errorf(n, path, "empty: want %s", want)
	case *ast.AnchorNode, *ast.AliasNode:
		d.errorf(n, path, "anchors and aliases (& and *) are not supported: write the value out")
	case *ast.TagNode:
		d.errorf(n, path, "tags (!!) are not supported: write the value plainly")
	default:
		return n, true
	}
	return nil, false
}

// describe names what n is, for "want X, got Y".
func describe(n ast.Node) string {
	switch n := n.(type) {
	case nil, *ast.NullNode:
		return "nothing"
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.StringNode:
		return strconv.Quote(n.Value)
	case *ast.LiteralNode:
		return "a block of text"
	case *ast.IntegerNode, *ast.FloatNode, *ast.InfinityNode, *ast.NanNode, *ast.BoolNode:
		return n.GetToken().Value
	default:
		return n.Type().YAMLName()
	}
}

// text returns the source text of a scalar: a string's value, a number's digits as written.
func text(n ast.Node) (string, bool) {
	switch n := n.(type) {
	case *ast.StringNode:
		return n.Value, true
	case *ast.LiteralNode:
		if n.Value == nil {
			return "", true
		}
		return n.Value.Value, true
	case *ast.IntegerNode, *ast.FloatNode:
		return n.GetToken().Value, true
	}
	return "", false
}

// plainNumber reports whether n is a number written without quotes: an integer or a float, or
// digits too long for the YAML parser's int64 and float64, which it leaves a plain string.
func plainNumber(n ast.Node) bool {
	switch n := n.(type) {
	case *ast.IntegerNode, *ast.FloatNode:
		return true
	case *ast.StringNode:
		return n.Token != nil && n.Token.Type == token.StringType && decimalPattern.MatchString(n.Value)
	}
	return false
}

// str reads a string, and reports false when n is not one. A number is not one: ids and
// products that look like numbers are quoted.
func (d *decoder) str(n ast.Node, path, want string) (string, bool) {
	n, ok := d.value(n, path, want)
	if !ok {
		return "", false
	}
	switch n.(type) {
	case *ast.StringNode, *ast.LiteralNode:
		return text(n)
	case *ast.IntegerNode, *ast.FloatNode:
		d.errorf(n, path, "want %s, got the number %s: quote it (%q)", want, describe(n), describe(n))
	default:
		d.errorf(n, path, "want %s, got %s", want, describe(n))
	}
	return "", false
}

var integerPattern = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)

// integer reads a whole number between lo and hi, written in plain decimal digits.
func (d *decoder) integer(n ast.Node, path string, lo, hi int64) int64 {
	n, ok := d.value(n, path, "a whole number")
	if !ok {
		return 0
	}
	s, _ := text(n)
	if !plainNumber(n) || !integerPattern.MatchString(s) {
		d.errorf(n, path, "want a whole number written in digits, like 25, got %s", describe(n))
		return 0
	}
	v, err := strconv.ParseInt(s, 10, 64)
	switch {
	case (err != nil && !strings.HasPrefix(s, "-")) || v > hi:
		d.errorf(n, path, "%s is too large: at most %d", s, hi)
	case err != nil || v < lo:
		d.errorf(n, path, "must be at least %d, got %s", lo, s)
	}
	return v
}

// boolean reads true or false.
func (d *decoder) boolean(n ast.Node, path string) bool {
	n, ok := d.value(n, path, "true or false")
	if !ok {
		return false
	}
	b, ok := n.(*ast.BoolNode)
	if !ok {
		d.errorf(n, path, "want true or false, got %s", describe(n))
		return false
	}
	return b.Value
}

var decimalPattern = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?$`)

// number reads a decimal from its source text, whether written as a string ("0.02") or as a
// number (0.02): plain digits with an optional fraction, never exponents, hex or infinities.
func (d *decoder) number(n ast.Node, path, want string) (decimal.Decimal, bool) {
	n, ok := d.value(n, path, want)
	if !ok {
		return decimal.Decimal{}, false
	}
	s, ok := text(n)
	if !ok {
		d.errorf(n, path, "want %s, got %s", want, describe(n))
		return decimal.Decimal{}, false
	}
	v, err := decimal.NewFromString(s)
	if err != nil || !decimalPattern.MatchString(s) {
		d.errorf(n, path, "%q is not a decimal number: want %s", s, want)
		return decimal.Decimal{}, false
	}
	return v, true
}

// money reads an amount of USD: a decimal >= 0 in whole cents, and > 0 when positive is set.
func (d *decoder) money(n ast.Node, path string, positive bool) decimal.Decimal {
	v, ok := d.number(n, path, `an amount of USD like "500.00"`)
	switch {
	case !ok:
	case v.IsNegative():
		d.errorf(n, path, "must not be negative, got %s", v)
	case !v.Equal(v.Truncate(2)):
		d.errorf(n, path, "%s is not whole cents: money has at most 2 decimal places", v)
	case positive && v.IsZero():
		d.errorf(n, path, "must be more than 0")
	}
	return v
}

// rate reads a rate: a decimal between 0 and 1 (0.03 is 3%).
func (d *decoder) rate(n ast.Node, path string) decimal.Decimal {
	v, ok := d.number(n, path, `a rate between 0 and 1 like "0.03" (3%)`)
	if ok && (v.IsNegative() || v.GreaterThan(decimal.NewFromInt(1))) {
		d.errorf(n, path, "%s is not a rate between 0 and 1 (0.03 is 3%%)", v)
	}
	return v
}

var instantPattern = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2}))?$`)

// instant reads a DATE (00:00 UTC that day) or an RFC 3339 TIME, as a UTC time.
func (d *decoder) instant(n ast.Node, path string) time.Time {
	const want = "a DATE like 2025-06-16 (00:00 UTC) or an RFC 3339 TIME like 2025-06-16T12:00:00Z"
	s, ok := d.str(n, path, want)
	if !ok {
		return time.Time{}
	}
	if !instantPattern.MatchString(s) {
		d.errorf(n, path, "%q is not %s", s, want)
		return time.Time{}
	}
	layout := time.RFC3339
	if len(s) == len(time.DateOnly) {
		layout = time.DateOnly
	}
	t, err := time.Parse(layout, s)
	if err != nil {
		msg := "not a real date or time"
		var pe *time.ParseError
		if errors.As(err, &pe) && pe.Message != "" {
			msg = strings.TrimPrefix(pe.Message, ": ")
		}
		d.errorf(n, path, "%q is not a real date or time: %s", s, msg)
		return time.Time{}
	}
	t = t.UTC()
	if t.Year() < 1 || t.Year() > 9999 {
		d.errorf(n, path, "%q is out of range: want a UTC year from 1 to 9999", s)
		return time.Time{}
	}
	return t
}

var windowPattern = regexp.MustCompile(`^(?:lifetime|([1-9][0-9]*)mo|([1-9][0-9]*)d)$`)

// window reads lifetime, Nmo (calendar months) or Nd (days of 24 hours).
func (d *decoder) window(n ast.Node, path string) reconcile.Window {
	s, ok := d.str(n, path, "a window: lifetime, Nmo or Nd")
	if !ok {
		return reconcile.Window{}
	}
	m := windowPattern.FindStringSubmatch(s)
	if m == nil {
		d.errorf(n, path, "%q is not a window (lifetime, Nmo or Nd)", s)
		return reconcile.Window{}
	}
	switch {
	case m[1] != "":
		months, err := strconv.Atoi(m[1])
		if err != nil || months > maxWindowMonth {
			d.errorf(n, path, "%q is too long: at most %dmo", s, maxWindowMonth)
		}
		return reconcile.Window{Months: months}
	case m[2] != "":
		days, err := strconv.Atoi(m[2])
		if err != nil || days > maxWindowDays {
			d.errorf(n, path, "%q is too long: at most %dd", s, maxWindowDays)
		}
		return reconcile.Window{Days: days}
	}
	return reconcile.Window{}
}

var (
	daysPattern     = regexp.MustCompile(`^(0|[1-9][0-9]*)d$`)
	durationPattern = regexp.MustCompile(`^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|μs|ms|s|m|h))+)$`)
)

// age reads a duration >= 0: a Go duration (24h, 90m, 1h30m) or Nd, N days of 24 hours.
func (d *decoder) age(n ast.Node, path string) time.Duration {
	const want = "a duration like 24h or 90m, or Nd for N days"
	s, ok := d.str(n, path, want)
	if !ok {
		return 0
	}
	if m := daysPattern.FindStringSubmatch(s); m != nil {
		days, err := strconv.Atoi(m[1])
		if err != nil || days > maxAgeDays {
			d.errorf(n, path, "%q is too long: at most %dd", s, maxAgeDays)
			return 0
		}
		return time.Duration(days) * 24 * time.Hour
	}
	if strings.HasPrefix(s, "-") {
		d.errorf(n, path, "must not be negative, got %q", s)
		return 0
	}
	if !durationPattern.MatchString(s) {
		d.errorf(n, path, "%q is not %s", s, want)
		return 0
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		d.errorf(n, path, "%q is too long: at most %dd", s, maxAgeDays)
		return 0
	}
	if v > maxAgeDays*24*time.Hour {
		d.errorf(n, path, "%q is too long: at most %dd", s, maxAgeDays)
	}
	return v
}

// formatTime writes t as the file does: a DATE at 00:00 UTC, else RFC 3339 in UTC.
func formatTime(t time.Time) string {
	t = t.UTC()
	if t.Equal(t.Truncate(24 * time.Hour)) {
		return t.Format(time.DateOnly)
	}
	return t.Format(time.RFC3339Nano)
}
