package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/shopspring/decimal"

	"github.com/runpod/creditrecon/internal/pgtest"
	"github.com/runpod/creditrecon/jobs"
	"github.com/runpod/creditrecon/reconcile"
	sqlstore "github.com/runpod/creditrecon/sql"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// wallClock is the injected "now" of every test run: after every cutoff the tests use.
var wallClock = time.Date(2027, 1, 1, 12, 0, 0, 0, time.UTC)

type fixture struct {
	t  *testing.T
	db *sqlx.DB
	st *sqlstore.Store
	r  *jobs.Runner
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db, dsn := pgtest.Open(t)
	st, err := sqlstore.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := &jobs.Runner{Store: st, Config: jobs.DefaultConfig(), Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now: func() time.Time { return wallClock }}
	return &fixture{t: t, db: db, st: st, r: r}
}

func (f *fixture) exec(query string, args ...any) {
	f.t.Helper()
	pgtest.Exec(f.t, f.db, query, args...)
}

func date(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

func (f *fixture) run(asOf string) *jobs.Result {
	f.t.Helper()
	res, err := f.r.Run(context.Background(), jobs.RunOptions{AsOf: date(asOf)})
	if err != nil {
		f.t.Fatalf("run as of %s: %v", asOf, err)
	}
	return res
}

// granted sums a beneficiary's grants in a program.
func (f *fixture) granted(program reconcile.Program, beneficiary string) string {
	f.t.Helper()
	var s decimal.Decimal
	if err := f.db.Get(&s, `SELECT coalesce(sum(amount_usd), 0) FROM credit_grants WHERE program = $1 AND beneficiary_id = $2`,
		program, beneficiary); err != nil {
		f.t.Fatal(err)
	}
	return s.StringFixed(2)
}

func (f *fixture) grantCount() int {
	f.t.Helper()
	var n int
	if err := f.db.Get(&n, `SELECT count(*) FROM credit_grants`); err != nil {
		f.t.Fatal(err)
	}
	return n
}

// ledger returns every account's total granted, "program/account/role" -> amount.
func (f *fixture) ledger() map[string]string {
	f.t.Helper()
	rows, err := f.db.Query(`SELECT program || '/' || account_id || '/' || role, sum(amount_usd)::text
		FROM credit_grants GROUP BY 1`)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	m := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			f.t.Fatal(err)
		}
		m[k] = v
	}
	return m
}

// users inserts users created on 2026-01-01.
func (f *fixture) users(ids ...string) {
	f.t.Helper()
	for _, id := range ids {
		f.exec(`INSERT INTO users VALUES ($1, '2026-01-01') ON CONFLICT DO NOTHING`, id)
	}
}

// referrals makes n referred users "<prefix>1".."<prefix>n" of referrer, referred at referredAt,
// each spending amount on product at spentAt.
func (f *fixture) referrals(referrer, prefix string, n int, referredAt string) {
	f.t.Helper()
	f.users(referrer)
	f.exec(`INSERT INTO users SELECT $1 || g, '2026-01-01' FROM generate_series(1, $2::int) g`, prefix, n)
	f.exec(`INSERT INTO referrals SELECT $1 || g, $2, $3::timestamptz FROM generate_series(1, $4::int) g`, prefix, referrer, referredAt, n)
}

var nextID int64 = 1_000_000

func (f *fixture) usage(user, product, template string, amount string, runtime int64, occurredAt string) {
	f.t.Helper()
	nextID++
	var tpl any
	if template != "" {
		tpl = template
	}
	f.exec(`INSERT INTO usage_events (id, user_id, product, template_id, amount_usd, runtime_seconds, occurred_at)
		VALUES ($1, $2, $3, $4, $5::numeric, $6, $7::timestamptz)`, nextID, user, product, tpl, amount, runtime, occurredAt)
}

func (f *fixture) accept(referrer string) {
	f.t.Helper()
	if _, err := f.st.Accept(context.Background(), jobs.Acceptance{ReferrerID: referrer, AcceptedBy: "test"}); err != nil {
		f.t.Fatal(err)
	}
}

func TestSeedExamples(t *testing.T) {
	f := newFixture(t)
	// 20 referrals × $100: earns $40.00, accrued but not granted (20 < 25).
	f.referrals("small", "s", 20, "2026-01-02")
	f.exec(`INSERT INTO usage_events (id, user_id, product, amount_usd, occurred_at)
		SELECT g, 's' || g, 'pod', 100, '2026-01-05' FROM generate_series(1, 20) g`)
	f.accept("small")
	// 20 users × $0.54/h × 168 h on a template: $1,814.40 of runtime, $18.144 earned.
	f.users("maker")
	f.exec(`INSERT INTO templates VALUES ('tpl', 'maker', '2026-01-01')`)
	f.exec(`INSERT INTO users SELECT 't' || g, '2026-01-01' FROM generate_series(1, 20) g`)
	f.exec(`INSERT INTO usage_events (id, user_id, product, template_id, amount_usd, runtime_seconds, occurred_at)
		SELECT 1000 + g * 10 + d, 't' || g, 'pod', 'tpl', 0.54 * 24, 86400, timestamptz '2026-01-10' + d * interval '1 day'
		FROM generate_series(1, 20) g, generate_series(0, 6) d`)
	// v1 spends $1,000 on Serverless: $500 to the referrer and $500 to v1.
	f.referrals("sv", "v", 1, "2026-01-02")
	f.usage("v1", "serverless", "", "1000.00", 3600, "2026-01-06")

	res := f.run("2026-02-01")
	if got := f.granted(reconcile.Template, "maker"); got != "18.14" {
		t.Errorf("template creator granted %s, want 18.14", got)
	}
	if got := f.granted(reconcile.Referral, "small"); got != "0.00" {
		t.Errorf("20 referrals granted %s, want 0.00", got)
	}
	x, err := f.r.Explain(context.Background(), "small", date("2026-02-01"))
	if err != nil {
		t.Fatal(err)
	}
	if len(x.Decisions) != 1 || !x.Decisions[0].Earned.Equal(decimal.NewFromInt(40)) || x.Decisions[0].Status != reconcile.StatusAccrued {
		t.Errorf("referrer small: %+v, want $40 earned and accrued", x.Decisions)
	}
	if res.Plan.Summary.Grants != 3 {
		t.Errorf("first run: %d grants, want 3 (template, two serverless bonuses)", res.Plan.Summary.Grants)
	}
	if got := f.granted(reconcile.ServerlessReferral, "sv"); got != "500.00" {
		t.Errorf("serverless referrer granted %s, want 500.00", got)
	}
	if got := f.granted(reconcile.ServerlessReferral, "v1"); got != "500.00" {
		t.Errorf("serverless referred granted %s, want 500.00", got)
	}
	// The $0.004 remainder carries: $0.60 more of template spend earns $0.006, so $0.01 is owed.
	f.usage("t1", "pod", "tpl", "0.60", 3600, "2026-02-01 10:00")
	f.run("2026-02-02")
	if got := f.granted(reconcile.Template, "maker"); got != "18.15" {
		t.Errorf("after $0.60 more: template creator granted %s, want 18.15 (the $0.004 carried)", got)
	}
	// Five more referrals: the accrued $40.00 is granted, as earnings from before eligibility are kept.
	f.exec(`INSERT INTO users SELECT 's' || g, '2026-01-01' FROM generate_series(21, 25) g`)
	f.exec(`INSERT INTO referrals SELECT 's' || g, 'small', '2026-02-03' FROM generate_series(21, 25) g`)
	f.run("2026-02-05")
	if got := f.granted(reconcile.Referral, "small"); got != "40.00" {
		t.Errorf("after the 25th referral: granted %s, want 40.00", got)
	}
}

func TestBoundaries(t *testing.T) {
	tests := []struct {
		name  string
		setup func(f *fixture)
		who   string
		prog  reconcile.Program
		want  string
	}{
		{"exactly 25 referrals and $500.00", func(f *fixture) {
			f.referrals("r", "u", 25, "2026-01-02")
			f.exec(`INSERT INTO usage_events (id, user_id, product, amount_usd, occurred_at)
				SELECT g, 'u' || g, 'storage', 20, '2026-01-05' FROM generate_series(1, 25) g`)
			f.accept("r")
		}, "r", reconcile.Referral, "10.00"},
		{"24 referrals", func(f *fixture) {
			f.referrals("r", "u", 24, "2026-01-02")
			f.exec(`INSERT INTO usage_events (id, user_id, product, amount_usd, occurred_at)
				SELECT g, 'u' || g, 'pod', 100, '2026-01-05' FROM generate_series(1, 24) g`)
			f.accept("r")
		}, "r", reconcile.Referral, "0.00"},
		{"$499.99 of referral spend", func(f *fixture) {
			f.referrals("r", "u", 25, "2026-01-02")
			f.exec(`INSERT INTO usage_events (id, user_id, product, amount_usd, occurred_at)
				SELECT g, 'u' || g, 'pod', CASE WHEN g = 1 THEN 19.99 ELSE 20 END, '2026-01-05' FROM generate_series(1, 25) g`)
			f.accept("r")
		}, "r", reconcile.Referral, "0.00"},
		{"25th referral made at the cutoff does not count", func(f *fixture) {
			f.referrals("r", "u", 24, "2026-01-02")
			f.referrals("r", "late", 1, "2026-02-01")
			f.exec(`INSERT INTO usage_events (id, user_id, product, amount_usd, occurred_at)
				SELECT g, 'u' || g, 'pod', 100, '2026-01-05' FROM generate_series(1, 24) g`)
			f.accept("r")
		}, "r", reconcile.Referral, "0.00"},
		{"usage before referred_at does not count", func(f *fixture) {
			f.referrals("r", "u", 25, "2026-01-10")
			f.exec(`INSERT INTO usage_events (id, user_id, product, amount_usd, occurred_at)
				SELECT g, 'u' || g, 'pod', 100, '2026-01-05' FROM generate_series(1, 25) g`)
			f.exec(`INSERT INTO usage_events (id, user_id, product, amount_usd, occurred_at)
				SELECT 100 + g, 'u' || g, 'pod', 20, '2026-01-10' FROM generate_series(1, 25) g`)
			f.accept("r")
		}, "r", reconcile.Referral, "10.00"},
		{"not accepted", func(f *fixture) {
			f.referrals("r", "u", 25, "2026-01-02")
			f.exec(`INSERT INTO usage_events (id, user_id, product, amount_usd, occurred_at)
				SELECT g, 'u' || g, 'pod', 100, '2026-01-05' FROM generate_series(1, 25) g`)
		}, "r", reconcile.Referral, "0.00"},
		{"exactly $1,000.00 serverless", func(f *fixture) {
			f.referrals("r", "u", 1, "2026-01-02")
			f.usage("u1", "serverless", "", "999.999", 10, "2026-01-05")
			f.usage("u1", "serverless", "", "0.001", 10, "2026-01-06")
		}, "u1", reconcile.ServerlessReferral, "500.00"},
		{"$999.99 serverless, plus pod spend", func(f *fixture) {
			f.referrals("r", "u", 1, "2026-01-02")
			f.usage("u1", "serverless", "", "999.99", 10, "2026-01-05")
			f.usage("u1", "pod", "", "5000", 10, "2026-01-06")
		}, "u1", reconcile.ServerlessReferral, "0.00"},
		{"serverless spend before referred_at", func(f *fixture) {
			f.referrals("r", "u", 1, "2026-01-10")
			f.usage("u1", "serverless", "", "2000", 10, "2026-01-05")
		}, "r", reconcile.ServerlessReferral, "0.00"},
		{"exactly 86,400 runtime seconds", func(f *fixture) {
			f.users("maker", "a")
			f.exec(`INSERT INTO templates VALUES ('tpl', 'maker', '2026-01-01')`)
			f.usage("a", "pod", "tpl", "100", 86399, "2026-01-05")
			f.usage("a", "serverless", "tpl", "100", 1, "2026-01-06")
		}, "maker", reconcile.Template, "2.00"},
		{"86,399 runtime seconds", func(f *fixture) {
			f.users("maker", "a")
			f.exec(`INSERT INTO templates VALUES ('tpl', 'maker', '2026-01-01')`)
			f.usage("a", "pod", "tpl", "100", 86399, "2026-01-05")
		}, "maker", reconcile.Template, "0.00"},
		{"the creator's own usage is excluded", func(f *fixture) {
			f.users("maker", "a")
			f.exec(`INSERT INTO templates VALUES ('tpl', 'maker', '2026-01-01')`)
			f.usage("maker", "pod", "tpl", "10000", 864000, "2026-01-05")
			f.usage("a", "pod", "tpl", "100", 86400, "2026-01-05")
		}, "maker", reconcile.Template, "1.00"},
		{"storage rows on a template earn nothing", func(f *fixture) {
			f.users("maker", "a")
			f.exec(`INSERT INTO templates VALUES ('tpl', 'maker', '2026-01-01')`)
			f.usage("a", "storage", "tpl", "10000", 864000, "2026-01-05")
			f.usage("a", "pod", "tpl", "100", 86400, "2026-01-05")
		}, "maker", reconcile.Template, "1.00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			tt.setup(f)
			f.run("2026-02-01")
			if got := f.granted(tt.prog, tt.who); got != tt.want {
				t.Errorf("%s granted %s, want %s", tt.who, got, tt.want)
			}
		})
	}
}

// history loads a random population whose usage spans January 2026: referrers around the
// thresholds, templates, serverless users and sub-cent amounts. Without refunds.
func history(f *fixture, rng *rand.Rand) {
	f.users("maker1", "maker2")
	f.exec(`INSERT INTO templates VALUES ('tpl1', 'maker1', '2026-01-01'), ('tpl2', 'maker2', '2026-01-01')`)
	users := []string{"maker1", "maker2"}
	for r := 1; r <= 3; r++ {
		referrer := fmt.Sprintf("ref%d", r)
		n := 24 + r
		f.referrals(referrer, referrer+"_u", n, fmt.Sprintf("2026-01-%02d", 1+rng.IntN(10)))
		f.accept(referrer)
		for i := 1; i <= n; i++ {
			users = append(users, fmt.Sprintf("%s_u%d", referrer, i))
		}
	}
	var ids []int64
	var user, product, tpl, amount, at []string
	var runtime []int64
	for i := range 600 {
		ids = append(ids, int64(i+1))
		user = append(user, users[rng.IntN(len(users))])
		product = append(product, []string{"pod", "serverless", "storage"}[rng.IntN(3)])
		tpl = append(tpl, []string{"", "tpl1", "tpl2"}[rng.IntN(3)])
		amount = append(amount, decimal.New(rng.Int64N(9_000_000), -5).String())
		runtime = append(runtime, rng.Int64N(20000))
		at = append(at, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rng.Int64N(int64(31*24*time.Hour)))).Format(time.RFC3339Nano))
	}
	f.exec(`INSERT INTO usage_events (id, user_id, product, template_id, amount_usd, runtime_seconds, occurred_at)
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::numeric[], $6::bigint[], $7::timestamptz[])`,
		pq.Array(ids), pq.Array(user), pq.Array(product), pq.Array(tpl), pq.Array(amount), pq.Array(runtime), pq.Array(at))
	f.exec(`UPDATE usage_events SET template_id = NULL WHERE template_id = ''`)
}

// TestSplitsGrantTheSameTotals is the property of SPEC 2: any split of the same usage into
// nightly runs, in any order, grants what one run at the last cutoff grants.
func TestSplitsGrantTheSameTotals(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	once := newFixture(t)
	history(once, rand.New(rand.NewPCG(1, 2)))
	once.run("2026-02-01")
	want := once.ledger()
	if len(want) < 5 {
		t.Fatalf("the history grants too little to be a test: %v", want)
	}
	for trial := range 4 {
		t.Run(fmt.Sprintf("trial %d", trial), func(t *testing.T) {
			f := newFixture(t)
			history(f, rand.New(rand.NewPCG(1, 2)))
			var cutoffs []string
			for day := 2; day <= 31; day++ {
				if rng.IntN(3) == 0 {
					cutoffs = append(cutoffs, fmt.Sprintf("2026-01-%02d", day))
				}
			}
			rng.Shuffle(len(cutoffs), func(i, j int) { cutoffs[i], cutoffs[j] = cutoffs[j], cutoffs[i] })
			cutoffs = append(cutoffs, "2026-02-01")
			for _, c := range cutoffs {
				f.run(c)
			}
			if got := f.ledger(); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("runs at %v granted\n%v\nwant (one run)\n%v", cutoffs, got, want)
			}
		})
	}
}

func TestRerunsWriteNothing(t *testing.T) {
	f := newFixture(t)
	history(f, rand.New(rand.NewPCG(3, 4)))
	f.run("2026-01-20")
	n := f.grantCount()
	if n == 0 {
		t.Fatal("no grants as of 2026-01-20: the test needs some")
	}
	if res := f.run("2026-01-20"); res.Plan.Summary.Grants != 0 || f.grantCount() != n {
		t.Errorf("the same cutoff again planned %d grants; grants %d, want %d", res.Plan.Summary.Grants, f.grantCount(), n)
	}
	f.run("2026-02-01")
	n = f.grantCount()
	if res := f.run("2026-01-15"); res.Plan.Summary.Grants != 0 || f.grantCount() != n {
		t.Errorf("an older cutoff after a newer one planned %d grants; grants %d, want %d", res.Plan.Summary.Grants, f.grantCount(), n)
	}
}

func TestLateRowsAreGrantedByTheNextRun(t *testing.T) {
	f := newFixture(t)
	f.users("maker", "a")
	f.exec(`INSERT INTO templates VALUES ('tpl', 'maker', '2026-01-01')`)
	f.usage("a", "pod", "tpl", "100", 86400, "2026-01-05")
	f.run("2026-01-10")
	if got := f.granted(reconcile.Template, "maker"); got != "1.00" {
		t.Fatalf("granted %s, want 1.00", got)
	}
	// A row for 2026-01-07 arrives after the run of 2026-01-10.
	f.usage("a", "pod", "tpl", "50", 3600, "2026-01-07")
	f.run("2026-01-11")
	if got := f.granted(reconcile.Template, "maker"); got != "1.50" {
		t.Errorf("after the late row: granted %s, want 1.50", got)
	}
}

func TestAcceptanceBetweenRuns(t *testing.T) {
	f := newFixture(t)
	f.referrals("r", "u", 25, "2026-01-02")
	f.exec(`INSERT INTO usage_events (id, user_id, product, amount_usd, occurred_at)
		SELECT g, 'u' || g, 'pod', 40, '2026-01-05' FROM generate_series(1, 25) g`)
	f.run("2026-01-10")
	if got := f.granted(reconcile.Referral, "r"); got != "0.00" {
		t.Fatalf("before acceptance: granted %s, want 0.00", got)
	}
	f.accept("r")
	// Acceptance counts when the run executes, whatever the cutoff: the same cutoff now pays all.
	f.run("2026-01-10")
	if got := f.granted(reconcile.Referral, "r"); got != "20.00" {
		t.Errorf("after acceptance: granted %s, want 20.00 (2%% of $1,000 from before acceptance)", got)
	}
}

func TestRefundsGiveClawbackAndAreFilledFirst(t *testing.T) {
	f := newFixture(t)
	f.users("maker", "a")
	f.exec(`INSERT INTO templates VALUES ('tpl', 'maker', '2026-01-01')`)
	f.usage("a", "pod", "tpl", "1000", 86400, "2026-01-05")
	f.run("2026-01-10")
	f.usage("a", "pod", "tpl", "-300", 0, "2026-01-11")
	res := f.run("2026-01-12")
	if got := res.Plan.Summary.Programs[reconcile.Template].ClawbackDue; !got.Equal(decimal.NewFromInt(3)) {
		t.Errorf("clawback due %s, want 3", got)
	}
	f.usage("a", "pod", "tpl", "400", 10, "2026-01-13")
	f.run("2026-01-14")
	// Earned is now 11.00: the 3.00 shortfall is filled before 1.00 more is granted.
	if got := f.granted(reconcile.Template, "maker"); got != "11.00" {
		t.Errorf("granted %s, want 11.00", got)
	}
}

func TestAnomaliesAreExcludedAndRecorded(t *testing.T) {
	f := newFixture(t)
	f.users("maker", "a")
	f.exec(`INSERT INTO templates VALUES ('tpl', 'maker', '2026-01-01')`)
	f.referrals("self", "x", 0, "2026-01-01")
	f.exec(`INSERT INTO referrals VALUES ('self', 'self', '2026-01-02')`)
	f.exec(`INSERT INTO usage_events (id, user_id, product, template_id, amount_usd, runtime_seconds, occurred_at)
		SELECT g, 'a', 'pod', 'tpl', 1, 864, '2026-01-03' FROM generate_series(1, 200) g`)
	anomalies := map[int64]string{
		1001: "amount_nan", 1002: "amount_out_of_range", 1003: "occurred_in_future",
		1004: "unknown_user", 1005: "unknown_template", 1006: "self_referral",
	}
	f.exec(`INSERT INTO usage_events (id, user_id, product, template_id, amount_usd, runtime_seconds, occurred_at) VALUES
		(1001, 'a', 'pod', 'tpl', 'NaN', 86400, '2026-01-03'),
		(1002, 'a', 'pod', 'tpl', 1e12, 86400, '2026-01-03'),
		(1003, 'a', 'pod', 'tpl', 5000, 86400, '2030-01-01'),
		(1004, 'ghost', 'pod', 'tpl', 5000, 86400, '2026-01-03'),
		(1005, 'a', 'pod', 'nope', 5000, 86400, '2026-01-03'),
		(1006, 'self', 'pod', 'tpl', 5000, 86400, '2026-01-03')`)
	f.r.Config.MaxAnomalyShare = 0.05
	res := f.run("2026-02-01")
	// Only the 200 valid rows count: $200 spend, 172,800 s.
	if got := f.granted(reconcile.Template, "maker"); got != "2.00" {
		t.Errorf("granted %s, want 2.00 (anomalies excluded)", got)
	}
	if res.Plan.Summary.Anomalies != 6 || res.Plan.Summary.UsageRows != 206 {
		t.Errorf("anomalies %d of %d rows, want 6 of 206", res.Plan.Summary.Anomalies, res.Plan.Summary.UsageRows)
	}
	got := map[int64]string{}
	err := f.st.Snapshot(context.Background(), func(s jobs.Snapshot) error {
		return s.Anomalies(context.Background(), []int64{res.RunID}, func(a jobs.Anomaly) error {
			got[a.UsageEventID] = a.Reason
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(anomalies) {
		t.Errorf("anomalies\n%v\nwant\n%v", got, anomalies)
	}
}

func TestTooManyAnomaliesWriteNothing(t *testing.T) {
	f := newFixture(t)
	f.users("maker", "a")
	f.exec(`INSERT INTO templates VALUES ('tpl', 'maker', '2026-01-01')`)
	f.usage("a", "pod", "tpl", "1000", 86400, "2026-01-05")
	f.usage("ghost", "pod", "tpl", "1000", 86400, "2026-01-05")
	var reports []jobs.RunReport
	f.r.Observer = observerFunc(func(r jobs.RunReport) { reports = append(reports, r) })
	_, err := f.r.Run(context.Background(), jobs.RunOptions{AsOf: date("2026-02-01")})
	var limit *jobs.AnomalyLimitError
	if !errors.As(err, &limit) || limit.Anomalies != 1 || limit.Considered != 2 {
		t.Fatalf("err = %v, want an AnomalyLimitError of 1 in 2", err)
	}
	// The observer (the metrics pusher) learns how close the run came to its limit, also when
	// the limit failed it: the anomaly share alert compares the two.
	if len(reports) != 1 {
		t.Fatalf("observer told of %d runs, want 1", len(reports))
	}
	if r := reports[0]; r.Err == nil || r.Summary.Anomalies != 1 || r.Summary.UsageRows != 2 || r.MaxAnomalyShare != f.r.Config.MaxAnomalyShare {
		t.Errorf("observer told err %v, %d anomalies of %d rows, limit %v; want the error, 1 of 2, limit %v",
			r.Err, r.Summary.Anomalies, r.Summary.UsageRows, r.MaxAnomalyShare, f.r.Config.MaxAnomalyShare)
	}
	if n := f.grantCount(); n != 0 {
		t.Errorf("%d grants written, want 0", n)
	}
	var status, msg string
	if err := f.db.QueryRow(`SELECT status, error FROM recon_runs ORDER BY id DESC LIMIT 1`).Scan(&status, &msg); err != nil {
		t.Fatal(err)
	}
	if status != jobs.StatusFailed || !strings.Contains(msg, "max-anomaly-share") {
		t.Errorf("ledger: status %q error %q, want failed naming max-anomaly-share", status, msg)
	}
}

// observerFunc is a jobs.Observer that calls itself.
type observerFunc func(jobs.RunReport)

func (f observerFunc) RunFinished(_ context.Context, r jobs.RunReport) { f(r) }

// TestStalePlanCannotDoubleGrant shows the grants table stops a double grant without the lock:
// two writers plan from the same state and only the first commit lands.
func TestStalePlanCannotDoubleGrant(t *testing.T) {
	f := newFixture(t)
	f.users("maker", "a")
	f.exec(`INSERT INTO templates VALUES ('tpl', 'maker', '2026-01-01')`)
	f.usage("a", "pod", "tpl", "1000", 86400, "2026-01-05")
	// Two dry runs share the state "nothing granted"; both plans owe 10.00.
	plan := func() []reconcile.Grant {
		res, err := f.r.Run(context.Background(), jobs.RunOptions{AsOf: date("2026-02-01"), DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		return res.Plan.Grants
	}
	first, second := plan(), plan()
	commit := func(grants []reconcile.Grant) error {
		sess, err := f.st.Lock(context.Background(), jobs.Shard{})
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		id, err := sess.StartRun(context.Background(), jobs.RunRecord{Kind: "run", AsOf: date("2026-02-01"), Parameters: []byte("{}")})
		if err != nil {
			t.Fatal(err)
		}
		return sess.Transact(context.Background(), func(s jobs.Snapshot) error {
			return s.WriteGrants(context.Background(), id, date("2026-02-01"), grants, jobs.Summary{})
		})
	}
	if err := commit(first); err != nil {
		t.Fatal(err)
	}
	if err := commit(second); !errors.Is(err, jobs.ErrGrantConflict) {
		t.Errorf("second commit of the same plan: err = %v, want ErrGrantConflict", err)
	}
	// A forged grant that skips the chain (granted_before 5.00 while 10.00 is granted) is refused.
	forged := first[0]
	forged.IdempotencyKey, forged.GrantedBefore = "forged", decimal.NewFromInt(5)
	if err := commit([]reconcile.Grant{forged}); !errors.Is(err, jobs.ErrGrantConflict) {
		t.Errorf("grant off the chain: err = %v, want ErrGrantConflict", err)
	}
	if got := f.granted(reconcile.Template, "maker"); got != "10.00" {
		t.Errorf("granted %s, want 10.00", got)
	}
}

func TestGrantsAreAppendOnly(t *testing.T) {
	f := newFixture(t)
	f.users("maker", "a")
	f.exec(`INSERT INTO templates VALUES ('tpl', 'maker', '2026-01-01')`)
	f.usage("a", "pod", "tpl", "1000", 86400, "2026-01-05")
	f.run("2026-02-01")
	for _, stmt := range []string{
		`UPDATE credit_grants SET amount_usd = amount_usd * 2`,
		`DELETE FROM credit_grants`,
		`TRUNCATE credit_grants CASCADE`,
	} {
		if _, err := f.db.Exec(stmt); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v, want refused as append-only", stmt, err)
		}
	}
	if got := f.granted(reconcile.Template, "maker"); got != "10.00" {
		t.Errorf("granted %s, want 10.00", got)
	}
}

func TestCrashedRunIsAbandoned(t *testing.T) {
	f := newFixture(t)
	f.exec(`INSERT INTO recon_runs (kind, as_of, status, parameters) VALUES ('run', '2026-01-01', 'running', '{}')`)
	f.run("2026-02-01")
	var statuses []string
	if err := f.db.Select(&statuses, `SELECT status FROM recon_runs ORDER BY id`); err != nil {
		t.Fatal(err)
	}
	if want := []string{"abandoned", "succeeded"}; fmt.Sprint(statuses) != fmt.Sprint(want) {
		t.Errorf("statuses %v, want %v", statuses, want)
	}
}

func TestExplain(t *testing.T) {
	f := newFixture(t)
	f.referrals("r", "u", 25, "2026-01-02")
	f.exec(`INSERT INTO usage_events (id, user_id, product, amount_usd, occurred_at)
		SELECT g, 'u' || g, 'serverless', CASE WHEN g = 1 THEN 1000 ELSE 1 END, '2026-01-05' FROM generate_series(1, 25) g`)
	f.run("2026-02-01")
	x, err := f.r.Explain(context.Background(), "r", date("2026-02-01"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range x.Decisions {
		if d.Status == reconcile.StatusPending {
			continue // u2..u25 have not reached the serverless threshold
		}
		got = append(got, fmt.Sprintf("%s %s %s eligible=%t owed=%s", d.Program, d.AccountID, d.Role, d.Eligible, d.Owed.StringFixed(2)))
	}
	sort.Strings(got)
	want := []string{
		"referral r  eligible=false owed=0.00",
		"serverless_referral u1 referrer eligible=true owed=0.00",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("decisions\n%v\nwant\n%v", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(x.Grants) != 1 || x.Grants[0].Amount.StringFixed(2) != "500.00" {
		t.Errorf("grants %+v, want the one 500.00 bonus", x.Grants)
	}
}

// TestRunWritesGrantsInBatches: a real run writes its grants while it streams its accounts, a
// batch at a time, so that its memory does not grow with the grants owed. Written every three
// grants, the batches must go in while the accounts stream, a run that fails after some were
// written must take them all back, and the ledger must then hold exactly the grants a dry run
// plans, each once, and the plan none.
func TestRunWritesGrantsInBatches(t *testing.T) {
	defer jobs.SetGrantBatch(3)()
	f := shardPopulation(t)
	ctx := context.Background()
	dry, err := f.r.Run(ctx, jobs.RunOptions{AsOf: date("2026-02-01"), DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	planned := dry.Plan.Grants
	if len(planned) < 30 {
		t.Fatalf("the dry run plans %d grants: the test needs ten batches or more", len(planned))
	}
	var want []string
	for _, g := range planned {
		want = append(want, g.IdempotencyKey+"="+g.Amount.StringFixed(2))
	}
	slices.Sort(want)

	// The tenth grant planned fails to insert, and says what the run's transaction holds by then:
	// the nine grants of the three batches before, each inserted by a statement of its own (cmin),
	// while a cursor still streams the accounts.
	f.exec(fmt.Sprintf(`CREATE FUNCTION fail_grant() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN IF NEW.idempotency_key = %s THEN
		  RAISE EXCEPTION 'injected failure after %% grants in %% statements, %% cursors open',
		    (SELECT count(*) FROM credit_grants), (SELECT count(DISTINCT cmin::text) FROM credit_grants),
		    (SELECT count(*) FROM pg_cursors WHERE name LIKE 'creditrecon_stream_%%');
		END IF; RETURN NEW; END $$`, pq.QuoteLiteral(planned[9].IdempotencyKey)))
	f.exec(`CREATE TRIGGER fail_grant BEFORE INSERT ON credit_grants FOR EACH ROW EXECUTE FUNCTION fail_grant()`)
	_, err = f.r.Run(ctx, jobs.RunOptions{AsOf: date("2026-02-01")})
	if want := "injected failure after 9 grants in 3 statements, 1 cursors open"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("run with a failing grant: err = %v, want %q", err, want)
	}
	if n := f.grantCount(); n != 0 {
		t.Errorf("the failed run left %d grants, want none: its batches must go with its transaction", n)
	}
	f.exec(`DROP TRIGGER fail_grant ON credit_grants`)

	res := f.run("2026-02-01")
	if res.Plan.Summary.Grants != int64(len(planned)) || len(res.Plan.Grants) != 0 {
		t.Errorf("run counted %d grants and kept %d in its plan, want %d and none", res.Plan.Summary.Grants, len(res.Plan.Grants), len(planned))
	}
	if got := grantKeys(t, f); !slices.Equal(got, want) {
		t.Errorf("the ledger holds %d grants, the dry run planned %d: they differ", len(got), len(want))
	}
	if err := f.verify(jobs.VerifyOptions{}).Err(); err != nil {
		t.Errorf("verify after the batched run: %v", err)
	}
}
