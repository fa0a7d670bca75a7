package main

import (
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/runpod/creditrecon/internal/pgtest"
)

// The fixture's nightly cutoff: all its usage is before it.
const cutoff = "2026-03-01"

// fixtureSQL is a small realistic population (390 usage rows), all of it in January 2026:
//
//   - ref_alice referred 30 users (dave, erin, alice_r03..alice_r30) and is accepted. Each referred
//     user spends 3 × 7.3333 on pods; dave spends 10 × 100.0005 = 1,000.005 on serverless (over the
//     bonus threshold by half a cent), erin 9 × 111.11 = 999.99 (one cent short); alice_r03 has a
//     refund of -10.50; alice_r04 has a row from before their referral, which does not count.
//     referral spend 2,649.492 → earned 52.98984 → 52.98 granted, 0.00984 carried.
//   - ref_bob referred 20 users spending 4 × 25.00 each: earned 40.00, accrued (20 < 25), accepted.
//   - ref_cat referred 26 users spending 2 × 12.50 each: earned 13.00, accrued (not accepted).
//   - carol created tpl_llm: 20 users × 7 days × 24 h × 0.54 USD/h (12.96 and 86,400 s a day) =
//     1,814.40 → earned 18.144 → 18.14 granted. carol's own runs and storage rows on it do not count.
//     carol's tpl_tiny has 3,600 s of runtime: earned 0.02, accrued.
//   - one usage row of an unknown user (ghost): an anomaly, 1 of 390 rows.
//
// So a run as of 2026-03-01 grants: referral ref_alice 52.98, template tpl_llm (carol) 18.14, and
// the serverless bonus of dave: 500.00 to ref_alice and 500.00 to dave.
const fixtureSQL = `
CREATE TEMP TABLE refs (referrer text, referred text, referred_at timestamptz);
INSERT INTO refs
SELECT 'ref_alice', CASE k WHEN 1 THEN 'dave' WHEN 2 THEN 'erin' ELSE 'alice_r' || lpad(k::text, 2, '0') END,
       timestamptz '2026-01-01 00:00Z' + k * interval '1 hour'
  FROM generate_series(1, 30) k
UNION ALL
SELECT 'ref_bob', 'bob_r' || lpad(k::text, 2, '0'), timestamptz '2026-01-02 00:00Z' + k * interval '1 hour'
  FROM generate_series(1, 20) k
UNION ALL
SELECT 'ref_cat', 'cat_r' || lpad(k::text, 2, '0'), timestamptz '2026-01-03 00:00Z' + k * interval '1 hour'
  FROM generate_series(1, 26) k;

INSERT INTO users (id, created_at)
SELECT id, timestamptz '2025-06-01 00:00Z' FROM unnest(ARRAY['ref_alice', 'ref_bob', 'ref_cat', 'carol']) id
UNION ALL
SELECT 'tuser' || lpad(k::text, 2, '0'), timestamptz '2025-07-01 00:00Z' FROM generate_series(1, 20) k
UNION ALL
SELECT 'fill' || lpad(k::text, 2, '0'), timestamptz '2025-08-01 00:00Z' FROM generate_series(1, 50) k
UNION ALL
SELECT referred, referred_at - interval '10 minutes' FROM refs;

INSERT INTO referrals (referred_user_id, referrer_id, referred_at) SELECT referred, referrer, referred_at FROM refs;

INSERT INTO templates (id, creator_id, created_at) VALUES
  ('tpl_llm', 'carol', '2025-12-01 00:00Z'),
  ('tpl_tiny', 'carol', '2025-12-01 00:00Z');

-- ref_alice's referred users: 3 pod rows of 7.3333 each.
INSERT INTO usage_events (id, user_id, product, amount_usd, runtime_seconds, occurred_at)
SELECT 10000 + k * 10 + j, r.referred, 'pod', 7.3333, 1800, timestamptz '2026-01-05 00:00Z' + k * interval '1 hour' + j * interval '1 minute'
  FROM generate_series(1, 30) k
  JOIN (SELECT referred, row_number() OVER (ORDER BY referred_at) AS k FROM refs WHERE referrer = 'ref_alice') r USING (k)
 CROSS JOIN generate_series(1, 3) j;
-- dave: 1,000.005 of serverless; erin: 999.99.
INSERT INTO usage_events (id, user_id, product, amount_usd, runtime_seconds, occurred_at)
SELECT 20000 + j, 'dave', 'serverless', 100.0005, 600, timestamptz '2026-01-10 00:00Z' + j * interval '1 hour'
  FROM generate_series(1, 10) j
UNION ALL
SELECT 20100 + j, 'erin', 'serverless', 111.11, 600, timestamptz '2026-01-11 00:00Z' + j * interval '1 hour'
  FROM generate_series(1, 9) j;
-- a refund, and usage from before the referral.
INSERT INTO usage_events (id, user_id, product, amount_usd, runtime_seconds, occurred_at) VALUES
  (20201, 'alice_r03', 'pod', -10.50, 0, '2026-01-20 12:00Z'),
  (20301, 'alice_r04', 'pod', 50.00, 3600, '2025-12-20 12:00Z');
-- ref_bob's and ref_cat's referred users.
INSERT INTO usage_events (id, user_id, product, amount_usd, runtime_seconds, occurred_at)
SELECT 30000 + k * 10 + j, 'bob_r' || lpad(k::text, 2, '0'), 'pod', 25.00, 3600,
       timestamptz '2026-01-06 00:00Z' + k * interval '1 hour' + j * interval '1 minute'
  FROM generate_series(1, 20) k CROSS JOIN generate_series(1, 4) j
UNION ALL
SELECT 40000 + k * 10 + j, 'cat_r' || lpad(k::text, 2, '0'), 'serverless', 12.50, 600,
       timestamptz '2026-01-07 00:00Z' + k * interval '1 hour' + j * interval '1 minute'
  FROM generate_series(1, 26) k CROSS JOIN generate_series(1, 2) j;
-- tpl_llm: 20 users, a week of one GPU at 0.54 USD/h, one row a day.
INSERT INTO usage_events (id, user_id, product, template_id, amount_usd, runtime_seconds, occurred_at)
SELECT 50000 + k * 10 + d, 'tuser' || lpad(k::text, 2, '0'), 'pod', 'tpl_llm', 12.96, 86400,
       timestamptz '2026-01-08 00:00Z' + d * interval '1 day' + k * interval '1 minute'
  FROM generate_series(1, 20) k CROSS JOIN generate_series(0, 6) d;
-- carol's own runs of her template, storage on it, and tpl_tiny's hour.
INSERT INTO usage_events (id, user_id, product, template_id, amount_usd, runtime_seconds, occurred_at) VALUES
  (50501, 'carol', 'pod', 'tpl_llm', 100.00, 86400, '2026-01-09 00:00Z'),
  (50502, 'carol', 'pod', 'tpl_llm', 100.00, 86400, '2026-01-10 00:00Z'),
  (50503, 'carol', 'serverless', 'tpl_llm', 100.00, 86400, '2026-01-11 00:00Z'),
  (50601, 'tuser01', 'storage', 'tpl_llm', 5.00, 0, '2026-01-12 00:00Z'),
  (50602, 'tuser01', 'storage', 'tpl_llm', 5.00, 0, '2026-01-13 00:00Z'),
  (50701, 'tuser01', 'pod', 'tpl_tiny', 2.00, 3600, '2026-01-14 00:00Z'),
  (60001, 'ghost', 'pod', NULL, 3.00, 60, '2026-01-15 00:00Z');
`

// bulkSQL (a fmt format; %[1]d is the row count) adds that many usage rows spread evenly over
// February 2026, all positive, on every user but the referrers and carol: the referred users' serverless rows are worth ten times more, so most
// referred users cross the serverless threshold at some point in February; the template users run
// tpl_llm. Cutoffs from 2026-02-01 on therefore see spend that only grows.
const bulkSQL = `
CREATE TEMP TABLE pool AS
SELECT (row_number() OVER (ORDER BY u.id COLLATE "C") - 1)::int AS idx, u.id AS user_id,
       CASE WHEN u.id LIKE 'tuser%%' THEN 'tpl_llm' END AS template_id,
       EXISTS (SELECT 1 FROM referrals r WHERE r.referred_user_id = u.id) AS referred
  FROM users u WHERE u.id NOT IN ('ref_alice', 'ref_bob', 'ref_cat', 'carol');
INSERT INTO usage_events (id, user_id, product, template_id, amount_usd, runtime_seconds, occurred_at)
SELECT 1000000 + g, p.user_id,
       CASE WHEN g %% 3 = 0 THEN 'serverless' ELSE 'pod' END,
       p.template_id,
       ((g::bigint * 7919) %% 10000)::numeric / 10000 * CASE WHEN g %% 3 = 0 AND p.referred THEN 10 ELSE 1 END,
       60,
       timestamptz '2026-02-01 00:00Z' + (g::float8 / %[1]d) * interval '28 days'
  FROM generate_series(1, %[1]d) g
  JOIN pool p ON p.idx = g %% (SELECT count(*) FROM pool);
`

// acceptedReferrers are accepted with `creditrecon accept` by every fixture.
var acceptedReferrers = []string{"ref_alice", "ref_bob"}

// loadFixture loads the fixture (and bulkRows more usage rows) into the database at dsn, runs
// `creditrecon migrate` and accepts the referrers with `creditrecon accept`.
func loadFixture(t testing.TB, dsn string, bulkRows int) {
	t.Helper()
	db, err := sqlx.Open("postgres", dsn)
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	defer db.Close()
	// One connection: the temp tables live in a session.
	db.SetMaxOpenConns(1)
	pgtest.Exec(t, db, fixtureSQL)
	if bulkRows > 0 {
		pgtest.Exec(t, db, fmt.Sprintf(bulkSQL, bulkRows))
		// Set hint bits and statistics once, in the template, rather than in every run on a copy.
		pgtest.Exec(t, db, "VACUUM ANALYZE")
	}
	mustRunInProc(t, "migrate", "--database-url", dsn)
	for _, r := range acceptedReferrers {
		mustRunInProc(t, "accept", r, "--by", "ops-test", "--note", "fixture", "--database-url", dsn)
	}
}

// newFixture is a fresh database holding the small fixture, migrated, with the referrers accepted.
func newFixture(t testing.TB) (*sqlx.DB, string) {
	t.Helper()
	db, dsn := pgtest.Open(t)
	loadFixture(t, dsn, 0)
	return db, dsn
}

// templateDB is a loaded database that is never connected to after loading, so that each test can
// take a cheap copy of it (CREATE DATABASE ... TEMPLATE).
type templateDB struct {
	name  string
	admin *sqlx.DB // a pool on another database of the same server, to create the copies
	dsn   string
	n     atomic.Int64
}

func newTemplateDB(t testing.TB, bulkRows int) *templateDB {
	t.Helper()
	dsn := pgtest.NewDatabase(t)
	loadFixture(t, dsn, bulkRows)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return &templateDB{name: strings.TrimPrefix(u.Path, "/"), admin: openDB(t, pgtest.NewDatabase(t)), dsn: dsn}
}

// copy returns the URL of a new database that is a copy of the template, dropped when t ends.
func (tpl *templateDB) copy(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("%s_c%d", tpl.name, tpl.n.Add(1))
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		// The template's last connections may still be closing.
		if _, err = tpl.admin.Exec(fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, tpl.name)); err == nil {
			break
		}
		if !strings.Contains(err.Error(), "being accessed by other users") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("copy database %s: %v", tpl.name, err)
	}
	t.Cleanup(func() { tpl.admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)") })
	u, _ := url.Parse(tpl.dsn)
	u.Path = "/" + name
	return u.String()
}
