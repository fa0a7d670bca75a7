package synth_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/runpod/creditrecon/internal/pgtest"
	"github.com/runpod/creditrecon/internal/synth"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func generate(t *testing.T, o synth.Options) (*sqlx.DB, synth.Summary) {
	t.Helper()
	db, _ := pgtest.Open(t)
	s, err := synth.Generate(context.Background(), db, o)
	if err != nil {
		t.Fatalf("generate: %v", err)
	}
	return db, s
}

func get[T any](t *testing.T, db *sqlx.DB, query string, args ...any) T {
	t.Helper()
	var v T
	if err := db.Get(&v, query, args...); err != nil {
		t.Fatalf("%.100s: %v", query, err)
	}
	return v
}

// digests is an md5 of every source table's rows in key order.
func digests(t *testing.T, db *sqlx.DB) map[string]string {
	t.Helper()
	out := map[string]string{}
	for table, key := range map[string]string{
		"users": "id", "referrals": "referred_user_id", "templates": "id", "usage_events": "id",
		"credit_loads": "id",
	} {
		// Epochs, not timestamptz text, so the session time zone cannot matter.
		out[table] = get[string](t, db, `SELECT md5(string_agg(row_to_json(x)::text, E'\n' ORDER BY x.`+key+`))
			FROM (SELECT * FROM `+table+`) x`)
	}
	return out
}

func TestGenerateIsDeterministic(t *testing.T) {
	o := synth.Options{Seed: 42, UsageRows: 5000, Users: 500, Templates: 60}
	a, _ := generate(t, o)
	o.Parallel = 3 // another split of the work must not matter
	b, _ := generate(t, o)
	da, db := digests(t, a), digests(t, b)
	for table, d := range da {
		if db[table] != d {
			t.Errorf("%s differs between two runs with the same seed", table)
		}
	}
	o.Seed = 43
	c, _ := generate(t, o)
	dc := digests(t, c)
	for table, d := range da {
		if dc[table] == d && table != "users" {
			t.Errorf("%s is the same with another seed", table)
		}
	}
	if dc["usage_events"] == da["usage_events"] {
		t.Error("usage is the same with another seed")
	}
}

func TestGenerateRefusesNonEmptyTables(t *testing.T) {
	o := synth.Options{Seed: 1, UsageRows: 1000, Users: 100, Templates: 10}
	db, _ := generate(t, o)
	if _, err := synth.Generate(context.Background(), db, o); err == nil {
		t.Fatal("a second Generate on the same tables succeeded")
	}
	before := digests(t, db)
	o.Truncate = true
	s, err := synth.Generate(context.Background(), db, o)
	if err != nil {
		t.Fatalf("generate with truncate: %v", err)
	}
	if s.UsageRows != 1000 {
		t.Errorf("usage rows after truncate: %d", s.UsageRows)
	}
	if after := digests(t, db); after["usage_events"] != before["usage_events"] {
		t.Error("regenerating after truncate gave other rows")
	}
	// The bulk load drops and rebuilds the key and any other index.
	if n := get[int](t, db, `SELECT count(*) FROM pg_indexes WHERE tablename = 'usage_events'`); n != 1 {
		t.Errorf("usage_events indexes: %d, want 1 (the primary key)", n)
	}
	if names := get[string](t, db, `SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes WHERE tablename = 'credit_loads'`); names != "credit_loads_pkey,credit_loads_user_loaded_idx" {
		t.Errorf("credit_loads indexes: %s", names)
	}
	if after := digests(t, db); after["credit_loads"] != before["credit_loads"] || after["users"] != before["users"] {
		t.Error("regenerating after truncate gave other loads or countries")
	}
}

func TestGenerateKeepsExtraIndexes(t *testing.T) {
	db, _ := pgtest.Open(t)
	pgtest.Exec(t, db, `CREATE INDEX usage_events_user_idx ON usage_events (user_id, occurred_at)`)
	if _, err := synth.Generate(context.Background(), db, synth.Options{Seed: 1, UsageRows: 2000}); err != nil {
		t.Fatal(err)
	}
	names := get[string](t, db, `SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes WHERE tablename = 'usage_events'`)
	if names != "usage_events_pkey,usage_events_user_idx" {
		t.Errorf("indexes after generate: %s", names)
	}
	cons := get[string](t, db, `SELECT string_agg(conname, ',' ORDER BY conname) FROM pg_constraint
		WHERE conrelid IN ('users'::regclass, 'referrals'::regclass, 'templates'::regclass)`)
	if cons != "referrals_pkey,referrals_referred_user_id_fkey,referrals_referrer_id_fkey,templates_creator_id_fkey,templates_pkey,users_pkey" {
		t.Errorf("constraints after generate: %s", cons)
	}
}

func TestGenerateShape(t *testing.T) {
	o := synth.Options{Seed: 7, UsageRows: 60_000}
	db, s := generate(t, o)
	full := synth.DefaultOptions(60_000)
	if s.Users != int64(full.Users) || s.Templates != int64(full.Templates) || s.UsageRows != 60_000 || s.Added != 60_000 {
		t.Fatalf("summary: %+v", s)
	}
	if s.Late == 0 || s.Refunds == 0 || s.NaNAmounts == 0 {
		t.Errorf("no late rows, refunds or NaN amounts: %+v", s)
	}

	t.Run("ids dense from 1", func(t *testing.T) {
		if n := get[int64](t, db, `SELECT count(DISTINCT id) FROM usage_events WHERE id BETWEEN 1 AND 60000`); n != 60_000 {
			t.Errorf("distinct ids in 1..60000: %d", n)
		}
	})

	t.Run("referrals", func(t *testing.T) {
		share := float64(s.Referrals) / float64(s.Users)
		if share < 0.17 || share > 0.23 {
			t.Errorf("referred share %.3f, want about 0.2", share)
		}
		if n := get[int](t, db, `SELECT count(*) FROM referrals WHERE referrer_id = referred_user_id`); n != 0 {
			t.Errorf("%d self-referrals by default", n)
		}
		var stats struct {
			Median, Max, Referrers, Small int
		}
		if err := db.Get(&stats, `SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY c) AS median, max(c) AS max,
				count(*) AS referrers, count(*) FILTER (WHERE c <= 3) AS small
			FROM (SELECT count(*) AS c FROM referrals GROUP BY referrer_id) x`); err != nil {
			t.Fatal(err)
		}
		if stats.Max < 20*stats.Median || stats.Small*10 < stats.Referrers*7 {
			t.Errorf("referrals per referrer not heavy-tailed: %+v", stats)
		}
		within := get[float64](t, db, `SELECT avg((r.referred_at < u.created_at + interval '1 day')::int)
			FROM referrals r JOIN users u ON u.id = r.referred_user_id`)
		if within < 0.7 || within > 0.95 {
			t.Errorf("share referred within a day of sign-up: %.2f", within)
		}
		if n := get[int](t, db, `SELECT count(*) FROM referrals r JOIN users u ON u.id = r.referred_user_id
			JOIN users ur ON ur.id = r.referrer_id
			WHERE r.referred_at < u.created_at OR r.referred_at < ur.created_at`); n != 0 {
			t.Errorf("%d referrals before an account existed", n)
		}
	})

	t.Run("products and templates", func(t *testing.T) {
		rows, err := db.Queryx(`SELECT product, count(*)::float8 / 60000, avg((template_id IS NOT NULL)::int)
			FROM usage_events GROUP BY product`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		want := map[string][2]float64{"pod": {0.42, 0.56}, "serverless": {0.2, 0.32}, "storage": {0.13, 0.17}, "network": {0.085, 0.115}}
		for rows.Next() {
			var product string
			var share, withTemplate float64
			if err := rows.Scan(&product, &share, &withTemplate); err != nil {
				t.Fatal(err)
			}
			w, ok := want[product]
			if !ok {
				t.Errorf("unexpected product %q", product)
				continue
			}
			if share < w[0] || share > w[1] {
				t.Errorf("%s share %.3f, want %v", product, share, w)
			}
			switch product {
			case "pod", "serverless":
				if withTemplate < 0.37 || withTemplate > 0.43 {
					t.Errorf("%s rows with a template: %.3f, want about 0.4", product, withTemplate)
				}
			case "storage":
				if withTemplate < 0.005 || withTemplate > 0.015 {
					t.Errorf("storage rows with a template: %.4f, want about 0.01", withTemplate)
				}
			case "network":
				if withTemplate != 0 {
					t.Errorf("network rows with a template: %.4f", withTemplate)
				}
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		top := get[float64](t, db, `SELECT max(c)::float8 / sum(c) FROM (SELECT count(*) c FROM usage_events
			WHERE template_id IS NOT NULL GROUP BY template_id) x`)
		if top < 0.05 {
			t.Errorf("the most popular template has only %.3f of template rows", top)
		}
		own := get[int](t, db, `SELECT count(*) FROM usage_events u JOIN templates t ON t.id = u.template_id AND t.creator_id = u.user_id`)
		if own == 0 {
			t.Error("no creator runs their own template")
		}
		early := get[int](t, db, `SELECT count(*) FROM usage_events u JOIN templates t ON t.id = u.template_id WHERE u.occurred_at < t.created_at`)
		if early != 0 {
			t.Errorf("%d rows use a template before it was created", early)
		}
	})

	t.Run("amounts, refunds, late rows", func(t *testing.T) {
		var a struct {
			Refunds, RefundRuntime, Late, Minutes, Zero, NonStorageRuntime, Timeless, BadScale int
			Before, After                                                                      int
		}
		if err := db.Get(&a, `SELECT
				count(*) FILTER (WHERE amount_usd < 0) AS refunds,
				count(*) FILTER (WHERE amount_usd < 0 AND runtime_seconds <> 0) AS refundruntime,
				count(*) FILTER (WHERE ingested_at >= occurred_at + interval '1 day') AS late,
				count(*) FILTER (WHERE ingested_at <= occurred_at + interval '15 minutes' AND ingested_at > occurred_at) AS minutes,
				count(*) FILTER (WHERE amount_usd = 0) AS zero,
				count(*) FILTER (WHERE product IN ('storage', 'network') AND runtime_seconds <> 0) AS nonstorageruntime,
				count(*) FILTER (WHERE product IN ('pod', 'serverless') AND amount_usd > 0 AND runtime_seconds <= 0) AS timeless,
				count(*) FILTER (WHERE amount_usd <> 'NaN' AND scale(amount_usd) <> 6) AS badscale,
				count(*) FILTER (WHERE occurred_at < $1) AS before,
				count(*) FILTER (WHERE occurred_at >= $2) AS after
			FROM usage_events`, synth.DefaultStart, synth.DefaultStart.AddDate(0, 0, 365)); err != nil {
			t.Fatal(err)
		}
		if a.Refunds < 450 || a.Refunds > 750 || a.RefundRuntime != 0 {
			t.Errorf("refunds: %+v", a)
		}
		if a.Late < 1000 || a.Late > 1400 || a.Late+a.Minutes < 59_900 {
			t.Errorf("late rows: %+v", a)
		}
		if a.Zero != 0 || a.NonStorageRuntime != 0 || a.Timeless != 0 || a.BadScale != 0 {
			t.Errorf("amounts and runtimes: %+v", a)
		}
		if a.Before != 0 || a.After != 0 {
			t.Errorf("rows outside the history: %+v", a)
		}
		if n := get[int](t, db, `SELECT count(*) FROM usage_events e JOIN users u ON u.id = e.user_id WHERE e.occurred_at < u.created_at`); n != 0 {
			t.Errorf("%d rows before their user signed up", n)
		}
	})

	t.Run("anomalies", func(t *testing.T) {
		var a struct{ Users, Templates, NaN int }
		if err := db.Get(&a, `SELECT
				count(*) FILTER (WHERE NOT EXISTS (SELECT FROM users u WHERE u.id = e.user_id)) AS users,
				count(*) FILTER (WHERE e.template_id IS NOT NULL AND NOT EXISTS (SELECT FROM templates t WHERE t.id = e.template_id)) AS templates,
				count(*) FILTER (WHERE e.amount_usd = 'NaN') AS nan
			FROM usage_events e`); err != nil {
			t.Fatal(err)
		}
		total := a.Users + a.Templates + a.NaN
		if a.Users == 0 || a.Templates == 0 || a.NaN == 0 || total < 15 || total > 50 {
			t.Errorf("anomalies (want about 30 of each kind together): %+v", a)
		}
	})
}

// TestDemoSizeIsInteresting: the demo size reaches every threshold of SPEC 2 a few times, for
// several seeds.
func TestDemoSizeIsInteresting(t *testing.T) {
	for _, seed := range []int64{1, 2, 3} {
		db, _ := generate(t, synth.Options{Seed: seed, UsageRows: synth.DemoUsageRows})
		referrers := get[int](t, db, `SELECT count(*) FROM (
			SELECT r.referrer_id FROM referrals r
			LEFT JOIN usage_events u ON u.user_id = r.referred_user_id AND u.occurred_at >= r.referred_at AND u.amount_usd <> 'NaN'
			GROUP BY r.referrer_id
			HAVING count(DISTINCT r.referred_user_id) >= 25 AND sum(u.amount_usd) >= 500) x`)
		serverless := get[int](t, db, `SELECT count(*) FROM (
			SELECT r.referred_user_id FROM referrals r
			JOIN usage_events u ON u.user_id = r.referred_user_id AND u.occurred_at >= r.referred_at
				AND u.product = 'serverless' AND u.amount_usd <> 'NaN'
			GROUP BY r.referred_user_id HAVING sum(u.amount_usd) >= 1000) x`)
		templates := get[int](t, db, `SELECT count(*) FROM (
			SELECT t.id FROM templates t
			JOIN usage_events u ON u.template_id = t.id AND u.user_id <> t.creator_id AND u.product IN ('pod', 'serverless')
			GROUP BY t.id HAVING sum(u.runtime_seconds) >= 86400) x`)
		all := get[int](t, db, `SELECT count(*) FROM templates`)
		t.Logf("seed %d: %d referrers >= 25 referrals and $500, %d referred users >= $1000 serverless, %d of %d templates >= 86400 s",
			seed, referrers, serverless, templates, all)
		if referrers < 3 || serverless < 3 || templates < 3 || templates > all/2 {
			t.Errorf("seed %d: demo not interesting enough", seed)
		}
	}
}

func TestSelfReferrals(t *testing.T) {
	db, _ := generate(t, synth.Options{Seed: 3, UsageRows: 2000, SelfReferrals: 4})
	if n := get[int](t, db, `SELECT count(*) FROM referrals WHERE referrer_id = referred_user_id`); n != 4 {
		t.Errorf("self-referrals: %d, want 4", n)
	}
}

func TestAppendDay(t *testing.T) {
	o := synth.Options{Seed: 5, UsageRows: 10_000}
	db, s0 := generate(t, o)
	day := synth.DefaultStart.AddDate(0, 0, 365)
	s, err := synth.AppendDay(context.Background(), db, o, day, 2000, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	if s.FirstID != s0.UsageRows+1 || s.LastID != s0.UsageRows+2000 || s.Added != 2000 || s.UsageRows != s0.UsageRows+2000 {
		t.Fatalf("summary: %+v", s)
	}
	var a struct{ Today, Late, LateIngestedToday, Older, Unknown int }
	if err := db.Get(&a, `SELECT
			count(*) FILTER (WHERE occurred_at >= $1 AND occurred_at < $2) AS today,
			count(*) FILTER (WHERE occurred_at < $1 AND occurred_at >= $3) AS late,
			count(*) FILTER (WHERE occurred_at < $1 AND ingested_at >= $1 AND ingested_at < $2) AS lateingestedtoday,
			count(*) FILTER (WHERE occurred_at < $3 OR occurred_at >= $2) AS older,
			count(*) FILTER (WHERE e.occurred_at < (SELECT created_at FROM users u WHERE u.id = e.user_id)) AS unknown
		FROM usage_events e WHERE id > $4`, day, day.AddDate(0, 0, 1), day.AddDate(0, 0, -30), s0.UsageRows); err != nil {
		t.Fatal(err)
	}
	if a.Late < 140 || a.Late > 260 || a.Today+a.Late != 2000 || a.LateIngestedToday != a.Late || a.Older != 0 || a.Unknown != 0 {
		t.Errorf("appended rows: %+v", a)
	}
	if s.Late == 0 || s.Late > int64(a.Late) {
		t.Errorf("summary late rows %d, rows of older days %d", s.Late, a.Late)
	}
	// A load per 100 usage rows, loaded that day or (late) during the 30 days before and
	// ingested that day, by known users that existed then, most of them referred.
	if s.LoadsAdded != 20 || s.Loads != s0.Loads+20 {
		t.Fatalf("loads in the summary: %+v (generated: %d)", s, s0.Loads)
	}
	var l struct{ All, Today, Late, Other, Unknown, Unborn, Referred, Dense int }
	if err := db.Get(&l, `SELECT count(*) AS all,
			count(*) FILTER (WHERE loaded_at >= $1 AND loaded_at < $2 AND ingested_at > loaded_at
				AND ingested_at <= loaded_at + interval '15 minutes') AS today,
			count(*) FILTER (WHERE loaded_at < $1 AND loaded_at >= $3 AND ingested_at >= $1 AND ingested_at < $2) AS late,
			count(*) FILTER (WHERE loaded_at < $3 OR loaded_at >= $2) AS other,
			count(*) FILTER (WHERE u.id IS NULL) AS unknown,
			count(*) FILTER (WHERE l.loaded_at < u.created_at) AS unborn,
			count(*) FILTER (WHERE EXISTS (SELECT FROM referrals r WHERE r.referred_user_id = l.user_id)) AS referred,
			count(DISTINCT l.id) FILTER (WHERE l.id BETWEEN $4 + 1 AND $4 + 20) AS dense
		FROM credit_loads l LEFT JOIN users u ON u.id = l.user_id WHERE l.id > $4`,
		day, day.AddDate(0, 0, 1), day.AddDate(0, 0, -30), s0.Loads); err != nil {
		t.Fatal(err)
	}
	if l.All != 20 || l.Dense != 20 || l.Today+l.Late != 20 || l.Other != 0 || l.Unknown != 0 || l.Unborn != 0 || l.Referred < 10 {
		t.Errorf("appended loads: %+v", l)
	}
	// The same append on the same data gives the same rows.
	db2, _ := generate(t, o)
	if _, err := synth.AppendDay(context.Background(), db2, o, day, 2000, 0.1); err != nil {
		t.Fatal(err)
	}
	if d1, d2 := digests(t, db), digests(t, db2); d1["usage_events"] != d2["usage_events"] || d1["credit_loads"] != d2["credit_loads"] {
		t.Error("the same append gave other rows")
	}
	// The next day continues the ids.
	s2, err := synth.AppendDay(context.Background(), db, o, day.AddDate(0, 0, 1), 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	if s2.FirstID != s.LastID+1 || s2.Late != 0 || s2.LoadsAdded != 1 || s2.Loads != s.Loads+1 {
		t.Errorf("second append: %+v", s2)
	}
	if n := get[int](t, db, `SELECT count(*) FROM credit_loads WHERE id = $1 AND loaded_at >= $2 AND loaded_at < $3`,
		s2.Loads, day.AddDate(0, 0, 1), day.AddDate(0, 0, 2)); n != 1 {
		t.Errorf("the second append's load is not the next id, loaded that day")
	}
	// Late loads do come: a bigger day with half of them late.
	s3, err := synth.AppendDay(context.Background(), db, o, day.AddDate(0, 0, 2), 10_000, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	late := get[int](t, db, `SELECT count(*) FROM credit_loads WHERE id > $1 AND loaded_at < $2 AND ingested_at >= $2`, s2.Loads, day.AddDate(0, 0, 2))
	refunds := get[int](t, db, `SELECT count(*) FROM credit_loads WHERE id > $1 AND amount_usd < 0`, s2.Loads)
	if s3.LoadsAdded != 100 || late < 30 || late > 70 || refunds > 10 {
		t.Errorf("third append: %d loads, %d late, %d refunds", s3.LoadsAdded, late, refunds)
	}
}

// knownCountries are the codes the generator writes that are ISO 3166-1 alpha-2 countries.
const knownCountries = `'DE','FR','GB','NL','ES','IT','PL','SE','IE','CH','NO','AT','BE','PT','DK','FI',
	'US','CA','BR','IN','JP','AU','SG','KR','MX'`

// countryShares are the shares of users.country by kind (SPEC 8.1: compared trimmed and
// upper-cased; unknown when not a country code).
type countryShares struct {
	Europe, US, Other, Null, Messy, Unknown float64
	// Values are the distinct odd values (messy or unknown), comma-separated.
	Values string
}

func measureCountries(t *testing.T, db *sqlx.DB) countryShares {
	t.Helper()
	var c countryShares
	if err := db.Get(&c, `SELECT
			count(*) FILTER (WHERE country IN ('DE','FR','GB','NL','ES','IT','PL','SE','IE','CH','NO','AT','BE','PT','DK','FI'))::float8 / count(*) AS europe,
			count(*) FILTER (WHERE country = 'US')::float8 / count(*) AS us,
			count(*) FILTER (WHERE country IN ('CA','BR','IN','JP','AU','SG','KR','MX'))::float8 / count(*) AS other,
			count(*) FILTER (WHERE country IS NULL)::float8 / count(*) AS null,
			count(*) FILTER (WHERE country <> upper(btrim(country)) AND upper(btrim(country)) IN (`+knownCountries+`))::float8 / count(*) AS messy,
			count(*) FILTER (WHERE upper(btrim(country)) NOT IN (`+knownCountries+`))::float8 / count(*) AS unknown,
			(SELECT string_agg(quote_literal(v), ',' ORDER BY v) FROM (SELECT DISTINCT country AS v FROM users
				WHERE country <> upper(btrim(country)) OR upper(btrim(country)) NOT IN (`+knownCountries+`)) x) AS values
		FROM users`); err != nil {
		t.Fatal(err)
	}
	return c
}

// loadShares describe credit_loads.
type loadShares struct {
	Loads, Referrals, PerReferral float64
	// Of the referrals made 10 days or more before the end: with a load within 10 days.
	FirstWithin10Days float64
	// Of those: with another (positive) load after referred_at, and the ones loaded at
	// referred_at exactly (a count).
	MoreLoads  float64
	AtReferral int
	// Of the loads of referred users: dated before referred_at (and a count of those one second
	// before).
	BeforeReferral float64
	SecondBefore   int
	// Of all loads: refunds, ingested a day or more late, by users never referred, of 5.00 or
	// 9.99 USD.
	Refunds, Late, Unreferred, BelowTen float64
	// Counts of things that must not be: loads of unknown users, before the user existed, at or
	// after the end of the history, refunds before any positive load of their user, amounts not
	// of 2 decimals, ingested before loaded.
	UnknownUser, Unborn, AfterEnd, LoneRefund, BadScale, EarlyIngest int
}

func measureLoads(t *testing.T, db *sqlx.DB, end time.Time) loadShares {
	t.Helper()
	var l loadShares
	if err := db.Get(&l, `WITH l AS (
			SELECT l.*, r.referred_at, u.id AS known, u.created_at
			FROM credit_loads l LEFT JOIN referrals r ON r.referred_user_id = l.user_id LEFT JOIN users u ON u.id = l.user_id
		), r AS (
			SELECT r.referred_user_id, r.referred_at,
				EXISTS (SELECT FROM credit_loads l WHERE l.user_id = r.referred_user_id AND l.amount_usd > 0
					AND l.loaded_at >= r.referred_at AND l.loaded_at <= r.referred_at + interval '10 days') AS first,
				(SELECT count(*) FROM credit_loads l WHERE l.user_id = r.referred_user_id AND l.amount_usd > 0
					AND l.loaded_at >= r.referred_at) AS positive,
				EXISTS (SELECT FROM credit_loads l WHERE l.user_id = r.referred_user_id AND l.loaded_at = r.referred_at) AS exact
			FROM referrals r WHERE r.referred_at < $1::timestamptz - interval '10 days'
		)
		SELECT (SELECT count(*) FROM l) AS loads, (SELECT count(*) FROM referrals) AS referrals,
			(SELECT count(*) FROM l)::float8 / (SELECT count(*) FROM referrals) AS perreferral,
			(SELECT avg(first::int) FROM r) AS firstwithin10days,
			(SELECT avg((positive >= 2)::int) FROM r WHERE first) AS moreloads,
			(SELECT count(*) FILTER (WHERE exact) FROM r) AS atreferral,
			(SELECT avg((loaded_at < referred_at)::int) FROM l WHERE referred_at IS NOT NULL) AS beforereferral,
			(SELECT count(*) FROM l WHERE loaded_at = referred_at - interval '1 second') AS secondbefore,
			(SELECT avg((amount_usd < 0)::int) FROM l) AS refunds,
			(SELECT avg((ingested_at >= loaded_at + interval '1 day')::int) FROM l) AS late,
			(SELECT avg((referred_at IS NULL)::int) FROM l) AS unreferred,
			(SELECT avg((amount_usd IN (5.00, 9.99))::int) FROM l) AS belowten,
			(SELECT count(*) FROM l WHERE known IS NULL) AS unknownuser,
			(SELECT count(*) FROM l WHERE loaded_at < created_at) AS unborn,
			(SELECT count(*) FROM l WHERE loaded_at >= $1) AS afterend,
			(SELECT count(*) FROM l WHERE amount_usd < 0 AND NOT EXISTS (SELECT FROM credit_loads p
				WHERE p.user_id = l.user_id AND p.amount_usd >= -l.amount_usd AND p.loaded_at < l.loaded_at)) AS lonerefund,
			(SELECT count(*) FROM l WHERE scale(amount_usd) <> 2) AS badscale,
			(SELECT count(*) FROM l WHERE ingested_at < loaded_at) AS earlyingest`, end); err != nil {
		t.Fatal(err)
	}
	return l
}

// TestCountriesAndLoads: users.country and credit_loads (SPEC 8.1) have the shares of issue 12,
// odd values and edge cases included, and nothing that cannot be.
func TestCountriesAndLoads(t *testing.T) {
	o := synth.Options{Seed: 11, UsageRows: 20_000, Users: 20_000, Templates: 200}
	db, s := generate(t, o)
	end := synth.DefaultStart.AddDate(0, 0, 365)

	c := measureCountries(t, db)
	t.Logf("countries: %+v", c)
	for _, b := range []struct {
		what      string
		got, want float64
	}{
		{"european", c.Europe, 0.35}, {"US", c.US, 0.45}, {"other", c.Other, 0.08},
		{"null", c.Null, 0.08}, {"messy but known", c.Messy, 0.02}, {"unknown", c.Unknown, 0.02},
	} {
		if b.got < b.want*0.85 || b.got > b.want*1.15 {
			t.Errorf("%s country share %.4f, want about %.2f", b.what, b.got, b.want)
		}
	}
	for _, v := range []string{`' us '`, `'de'`, `''`, `' '`, `'12'`, `'EU'`, `'USA'`, `'XX'`, `'ZZ'`} {
		if !strings.Contains(","+c.Values+",", ","+v+",") {
			t.Errorf("no country %s among the odd values %s", v, c.Values)
		}
	}

	l := measureLoads(t, db, end)
	t.Logf("loads: %+v", l)
	if s.Loads != int64(l.Loads) || s.LoadsAdded != s.Loads {
		t.Errorf("summary loads %d (added %d), table %v", s.Loads, s.LoadsAdded, l.Loads)
	}
	if l.PerReferral < 1.3 || l.PerReferral > 1.8 {
		t.Errorf("%.2f loads per referral, want about 1.5", l.PerReferral)
	}
	if l.Loads*10 > float64(s.UsageRows) && s.UsageRows > 100_000 {
		t.Errorf("loads are not far fewer than usage rows")
	}
	for _, b := range []struct {
		what     string
		got      float64
		min, max float64
	}{
		{"referrals with a first load within 10 days", l.FirstWithin10Days, 0.71, 0.79},
		{"loaders with more loads", l.MoreLoads, 0.29, 0.38},
		{"loads of referred users before referred_at", l.BeforeReferral, 0.035, 0.065},
		{"refunds", l.Refunds, 0.013, 0.027},
		{"late loads", l.Late, 0.022, 0.038},
		{"loads of users never referred", l.Unreferred, 0.07, 0.2},
		{"loads of 5.00 or 9.99", l.BelowTen, 0.07, 0.13},
	} {
		if b.got < b.min || b.got > b.max {
			t.Errorf("share of %s: %.4f, want %v to %v", b.what, b.got, b.min, b.max)
		}
	}
	if l.AtReferral == 0 || l.SecondBefore == 0 {
		t.Errorf("no load at referred_at exactly, or one second before: %+v", l)
	}
	if l.UnknownUser != 0 || l.Unborn != 0 || l.AfterEnd != 0 || l.LoneRefund != 0 || l.BadScale != 0 || l.EarlyIngest != 0 {
		t.Errorf("impossible loads: %+v", l)
	}
	if n := get[int64](t, db, `SELECT count(DISTINCT id) FROM credit_loads WHERE id BETWEEN 1 AND $1`, s.Loads); n != s.Loads {
		t.Errorf("load ids not dense from 1: %d distinct of %d", n, s.Loads)
	}

	// A non-empty credit_loads alone makes Generate refuse, as the other tables do.
	db2, _ := pgtest.Open(t)
	pgtest.Exec(t, db2, `INSERT INTO credit_loads VALUES (1, 'someone', 10, now(), now())`)
	if _, err := synth.Generate(context.Background(), db2, o); err == nil {
		t.Error("Generate wrote into a non-empty credit_loads")
	}
}

// TestSourceSchemaUpgrade: the DDL adds users.country and credit_loads to tables created before.
func TestSourceSchemaUpgrade(t *testing.T) {
	db, _ := pgtest.Open(t)
	pgtest.Exec(t, db, `DROP TABLE credit_loads; ALTER TABLE users DROP COLUMN country`)
	pgtest.Exec(t, db, `INSERT INTO users VALUES ('old', '2025-01-01')`)
	if err := synth.CreateSourceTables(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	if n := get[int](t, db, `SELECT count(*) FROM users WHERE id = 'old' AND country IS NULL`); n != 1 {
		t.Error("users.country not added")
	}
	if n := get[int](t, db, `SELECT count(*) FROM credit_loads`); n != 0 {
		t.Error("credit_loads not created")
	}
	if err := synth.CreateSourceTables(context.Background(), db); err != nil {
		t.Errorf("the DDL is not idempotent: %v", err)
	}
}

// TestGenerateBig measures a big load: SYNTH_BIG=1 (1M rows; SYNTH_ROWS=n for another size).
func TestGenerateBig(t *testing.T) {
	if os.Getenv("SYNTH_BIG") == "" {
		t.Skip("set SYNTH_BIG=1 (and SYNTH_ROWS) to measure a big load")
	}
	rows := 1_000_000
	if v := os.Getenv("SYNTH_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("SYNTH_ROWS: %v", err)
		}
		rows = n
	}
	db, _ := pgtest.Open(t)
	began := time.Now()
	s, err := synth.Generate(context.Background(), db, synth.Options{Seed: 1, UsageRows: rows, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("generated %d usage rows in %v: %+v", rows, time.Since(began).Round(time.Millisecond), s)
	size := get[string](t, db, `SELECT pg_size_pretty(pg_total_relation_size('usage_events'))`)
	t.Logf("usage_events with its key: %s", size)
	began = time.Now()
	a, err := synth.AppendDay(context.Background(), db, synth.Options{Seed: 1, UsageRows: rows}, synth.DefaultStart.AddDate(0, 0, 365), 100_000, 0.05)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("appended a day of 100,000 rows in %v: %+v", time.Since(began).Round(time.Millisecond), a)
}
