package jobs_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/runpod/creditrecon/jobs"
	"github.com/runpod/creditrecon/reconcile"
)

// secret is the draw secret of the tests: 32 bytes.
const secret = "0123456789abcdef0123456789abcdef"

// signupTerms: the seed referral terms, a signup bonus from 2026-01-01 ($10 of loads; Germany
// and France fixed at $5, others drawn; unknown countries fixed), and a cash partner tier of
// 10% of pod for 1 month.
const signupTerms = `
programs:
  referral:
    - id: seed
      rates: [{products: {"*": "0.02"}}]
      window: lifetime
      min_referrals: 0
      min_spend_usd: "0"
      requires_acceptance: false
    - id: partner
      tier: true
      payout: cash
      rates: [{products: {pod: "0.10"}}]
      window: 1mo
      min_referrals: 0
      min_spend_usd: "0"
      requires_acceptance: false
  signup_bonus:
    - id: bonus-2026
      from: 2026-01-01
      max_account_age: 24h
      min_load_usd: "10.00"
      fixed_usd: "5.00"
      fixed_countries: [DE, FR]
      unknown_country: fixed
      draw:
        - {usd: "5.00", weight: 8500}
        - {usd: "10.00", weight: 1100}
        - {usd: "25.00", weight: 250}
        - {usd: "50.00", weight: 100}
        - {usd: "100.00", weight: 40}
        - {usd: "500.00", weight: 10}
`

// signupFixture is a fixture under signupTerms with the draw secret.
func signupFixture(t *testing.T) *fixture {
	f := newFixture(t)
	f.useTerms(signupTerms)
	f.r.Config.DrawSecret = []byte(secret)
	return f
}

// refer makes referrer refer user at referredAt; both are created with country (nil: NULL) at
// created.
func (f *fixture) refer(referrer, referrerCountry, user, userCountry, created, referredAt string) {
	f.t.Helper()
	country := func(c string) any {
		if c == "-" {
			return nil
		}
		return c
	}
	f.exec(`INSERT INTO users (id, created_at, country) VALUES ($1, '2025-06-01', $2) ON CONFLICT DO NOTHING`, referrer, country(referrerCountry))
	f.exec(`INSERT INTO users (id, created_at, country) VALUES ($1, $2, $3)`, user, created, country(userCountry))
	f.exec(`INSERT INTO referrals VALUES ($1, $2, $3)`, user, referrer, referredAt)
}

var nextLoad int64

func (f *fixture) load(user, amount, at string) {
	f.t.Helper()
	nextLoad++
	f.exec(`INSERT INTO credit_loads (id, user_id, amount_usd, loaded_at) VALUES ($1, $2, $3::numeric, $4)`, nextLoad, user, amount, at)
}

// bonus returns the signup bonus granted to beneficiary for user's referral in a role, and its
// kind and u.
func (f *fixture) bonus(user, role string) (amount, kind, u string) {
	f.t.Helper()
	var rows []struct {
		Amount string  `db:"amount_usd"`
		Kind   string  `db:"bonus_kind"`
		U      *string `db:"draw_u"`
	}
	if err := f.db.Select(&rows, `SELECT amount_usd::text, bonus_kind, draw_u::text FROM credit_grants
		WHERE program = 'signup_bonus' AND account_id = $1 AND role = $2`, user, role); err != nil {
		f.t.Fatal(err)
	}
	switch len(rows) {
	case 0:
		return "0", "", ""
	case 1:
		if rows[0].U != nil {
			u = *rows[0].U
		}
		return rows[0].Amount, rows[0].Kind, u
	}
	f.t.Fatalf("%d signup bonus grants for %s's %s", len(rows), user, role)
	return
}

func TestSignupBonusLoads(t *testing.T) {
	f := signupFixture(t)
	drawn := func(user, role string) string {
		v, _ := f.r.Config.Terms.Terms.SignupVersion("bonus-2026")
		return reconcile.Draw([]byte(secret), "bonus-2026", user, role, v.Draw).USD.StringFixed(2)
	}
	// Both in Germany: fixed $5 each, on one load of exactly 10.00.
	f.refer("r_de", "DE", "exact", "de", "2026-01-05", "2026-01-05 12:00")
	f.load("exact", "10.00", "2026-01-06")
	// Loads adding up to 10.00; one before the referral does not count.
	f.refer("r_us", "US", "adds", "US", "2026-01-05", "2026-01-05 12:00")
	f.load("adds", "50.00", "2026-01-05 11:00")
	f.load("adds", "4.00", "2026-01-07")
	f.load("adds", "6.00", "2026-01-08")
	// 9.99 never reaches it.
	f.refer("r_us", "US", "short", "FR", "2026-01-05", "2026-01-05 12:00")
	f.load("short", "9.99", "2026-01-06")
	// An account created long before its referral: no bonus.
	f.refer("r_us", "US", "old", "US", "2025-01-01", "2026-01-05 12:00")
	f.load("old", "100", "2026-01-06")
	// Unknown and null countries get the fixed amount; a cross-region pair each their own.
	f.refer("r_zz", "ZZ", "nocountry", "-", "2026-01-05", "2026-01-05 12:00")
	f.load("nocountry", "10", "2026-01-06")
	f.refer("r_fr", " fr ", "cross", "BR", "2026-01-05", "2026-01-05 12:00")
	f.load("cross", "25", "2026-01-06")
	// Referred before the signup bonus began: no bonus.
	f.refer("r_us", "US", "early", "US", "2025-12-30", "2025-12-30 12:00")
	f.load("early", "100", "2026-01-06")
	f.run("2026-02-01")

	for _, c := range []struct {
		user, role, amount, kind string
	}{
		{"exact", "referrer", "5.00", "fixed"}, {"exact", "referred", "5.00", "fixed"},
		{"adds", "referrer", drawn("adds", "referrer"), "draw"}, {"adds", "referred", drawn("adds", "referred"), "draw"},
		{"short", "referrer", "0", ""}, {"short", "referred", "0", ""},
		{"old", "referrer", "0", ""}, {"old", "referred", "0", ""},
		{"nocountry", "referrer", "5.00", "fixed"}, {"nocountry", "referred", "5.00", "fixed"},
		{"cross", "referrer", "5.00", "fixed"}, {"cross", "referred", drawn("cross", "referred"), "draw"},
		{"early", "referrer", "0", ""}, {"early", "referred", "0", ""},
	} {
		if amount, kind, _ := f.bonus(c.user, c.role); amount != c.amount || kind != c.kind {
			t.Errorf("%s's %s bonus: %s (%s), want %s (%s)", c.user, c.role, amount, kind, c.amount, c.kind)
		}
	}

	// A refund after the bonus leaves it; a late load counts once; re-runs never redraw; a new
	// secret changes nothing granted.
	before := f.ledger()
	f.load("exact", "-10.00", "2026-02-03")
	f.exec(`INSERT INTO credit_loads (id, user_id, amount_usd, loaded_at, ingested_at) VALUES (999, 'short', 0.01, '2026-01-20', now())`)
	f.run("2026-02-05")
	if amount, _, _ := f.bonus("short", "referred"); amount == "0" {
		t.Errorf("a late load took short to 10.00: no bonus")
	}
	f.r.Config.DrawSecret = []byte("another secret, also 32 bytes long!")
	f.run("2026-02-06")
	f.run("2026-02-06")
	after := f.ledger()
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s: %s before, %s after a refund, a new secret and re-runs", k, v, after[k])
		}
	}
	if d := f.decision("2026-02-06", "exact", reconcile.SignupBonus, "bonus-2026"); d.Status != reconcile.StatusRefunded || d.ClawbackDue.IsPositive() {
		t.Errorf("after the refund: %s, clawback %s; want refunded and nothing due", d.Status, d.ClawbackDue)
	}
	f.r.Config.DrawSecret = []byte(secret)
	if rep := f.verify(jobs.VerifyOptions{}); rep.Err() != nil {
		t.Errorf("verify: %v", rep.Err())
	}
}

func TestSignupBonusUsageErrors(t *testing.T) {
	f := signupFixture(t)
	for _, c := range []struct {
		name, secret, want string
	}{
		{"no secret", "", "CREDITRECON_DRAW_SECRET: not set"},
		{"a short secret", "short", "CREDITRECON_DRAW_SECRET: 5 bytes"},
	} {
		cfg := f.r.Config
		cfg.DrawSecret = []byte(c.secret)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Validate() = %v, want %q", c.name, err, c.want)
		}
	}
	f.exec(`DROP TABLE credit_loads`)
	_, err := f.r.Run(context.Background(), jobs.RunOptions{AsOf: date("2026-02-01")})
	if !errors.Is(err, jobs.ErrMissingSource) || !strings.Contains(err.Error(), "credit_loads") {
		t.Errorf("without credit_loads: %v, want ErrMissingSource naming it", err)
	}
	if n := f.grantCount(); n != 0 {
		t.Errorf("%d grants written", n)
	}
}

func TestPartnerTier(t *testing.T) {
	f := signupFixture(t)
	f.refer("aff", "US", "beta", "US", "2026-01-01", "2026-01-01")
	f.refer("aff", "US", "late", "US", "2026-01-01", "2026-02-10")
	f.usage("beta", "pod", "", "100", 0, "2026-01-20")     // before the enrollment: seed, credits (2.00)
	f.usage("beta", "pod", "", "100", 0, "2026-02-15")     // after it, but past beta's tier window (01-01 + 1mo): seed (2.00)
	f.usage("late", "pod", "", "100", 0, "2026-02-15")     // inside late's tier window: tier, cash (10.00)
	f.usage("late", "storage", "", "100", 0, "2026-02-16") // inside it, no tier rate: earns nothing
	f.usage("late", "pod", "", "100", 0, "2026-03-11")     // past late's window: back to seed (2.00)
	f.run("2026-02-01")
	if _, _, err := f.st.Enroll(context.Background(), jobs.Enrollment{ReferrerID: "aff", Tier: "partner", From: date("2026-02-01"),
		EnrolledBy: "test"}); err != nil {
		t.Fatal(err)
	}
	created, existing, err := f.st.Enroll(context.Background(), jobs.Enrollment{ReferrerID: "aff", Tier: "partner", From: date("2026-03-01"), EnrolledBy: "test"})
	if err != nil || created || existing == nil || !existing.From.Equal(date("2026-02-01")) {
		t.Errorf("a second enrollment: created %t, existing %+v, %v; want refused, the first kept", created, existing, err)
	}
	res := f.run("2026-03-20")
	if res.Plan.Summary.Aggregates.Mode != "full" {
		t.Errorf("after an enrollment: mode %s, want full", res.Plan.Summary.Aggregates.Mode)
	}
	if got := f.grantedIn(reconcile.Referral, "seed", "aff"); got != "6.00" {
		t.Errorf("seed (credits): granted %s, want 6.00", got)
	}
	if got := f.grantedIn(reconcile.Referral, "partner", "aff"); got != "10.00" {
		t.Errorf("partner tier: granted %s, want 10.00", got)
	}
	var cash decimal.Decimal
	if err := f.db.Get(&cash, `SELECT coalesce(sum(amount_usd), 0) FROM credit_grants WHERE payout = 'cash'`); err != nil || !cash.Equal(decimal.NewFromInt(10)) {
		t.Errorf("cash granted %s (%v), want 10.00", cash, err)
	}
	if !res.Plan.Summary.Cash.Equal(decimal.NewFromInt(10)) {
		t.Errorf("run summary cash %s, want 10.00", res.Plan.Summary.Cash)
	}
}
