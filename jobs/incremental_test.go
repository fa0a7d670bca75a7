package jobs_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/runpod/creditrecon/jobs"
)

// day adds nightly usage for one day to a history: rows dated that day, late rows for the days
// before it, a refund now and then, and an anomaly.
func day(f *fixture, rng *rand.Rand, d time.Time, users []string) {
	f.t.Helper()
	for range 20 + rng.IntN(20) {
		at := d.Add(time.Duration(rng.Int64N(int64(24 * time.Hour))))
		if rng.IntN(5) == 0 { // a late row: it happened up to ten days ago
			at = at.AddDate(0, 0, -1-rng.IntN(10))
		}
		amount := fmt.Sprintf("%d.%05d", rng.IntN(60), rng.IntN(100000))
		if rng.IntN(25) == 0 {
			amount = "-" + amount
		}
		product := []string{"pod", "serverless", "storage"}[rng.IntN(3)]
		f.usage(users[rng.IntN(len(users))], product, []string{"", "tpl1", "tpl2"}[rng.IntN(3)], amount, rng.Int64N(30000), at.Format(time.RFC3339Nano))
	}
	for range 3 + rng.IntN(4) { // credit loads, some of them late, now and then a refund
		at := d.Add(time.Duration(rng.Int64N(int64(24 * time.Hour))))
		if rng.IntN(4) == 0 {
			at = at.AddDate(0, 0, -1-rng.IntN(10))
		}
		amount := []string{"5.00", "9.99", "10", "25", "-10"}[rng.IntN(5)]
		f.load(users[rng.IntN(len(users))], amount, at.Format(time.RFC3339Nano))
	}
	if rng.IntN(4) == 0 {
		f.usage("ghost", "pod", "tpl1", "5", 100, d.Format(time.RFC3339))
	}
}

// aggregateQueries read a run's aggregates and anomalies.
var aggregateQueries = map[string]string{
	"referrals": `SELECT referred_user_id, referrer_id, usage_rows, spend_usd, serverless_rows, serverless_usd, terms_id, earned_usd,
		serverless_terms_id, tier_terms_id, tier_rows, tier_spend_usd, tier_earned_usd FROM run_referrals WHERE run_id = %d`,
	"signups":   `SELECT referred_user_id, referrer_id, terms_id, loads_usd, referrer_country, referred_country FROM run_signups WHERE run_id = %d`,
	"templates": `SELECT template_id, creator_id, usage_rows, runtime_seconds, spend_usd, terms_id, earned_usd FROM run_templates WHERE run_id = %d`,
	"anomalies": `SELECT usage_event_id, reason FROM run_anomalies WHERE run_id = %d`,
}

// keepAggregates copies a run's aggregates aside: a later run of the same cutoff prunes them.
func keepAggregates(f *fixture, run int64) {
	f.t.Helper()
	for name, q := range aggregateQueries {
		f.exec(`DROP TABLE IF EXISTS kept_` + name)
		f.exec(`CREATE TABLE kept_` + name + ` AS ` + fmt.Sprintf(q, run))
	}
}

// sameAggregates fails unless run recorded the aggregates and anomalies kept aside.
func sameAggregates(t *testing.T, f *fixture, run int64) {
	t.Helper()
	for name, q := range aggregateQueries {
		q = fmt.Sprintf(q, run)
		var diff int
		err := f.db.Get(&diff, `SELECT count(*) FROM ((`+q+` EXCEPT TABLE kept_`+name+`) UNION ALL (TABLE kept_`+name+` EXCEPT `+q+`)) d`)
		if err != nil {
			t.Fatal(err)
		}
		if diff != 0 {
			t.Errorf("run %d and the incremental run differ in %d rows of %s", run, diff, name)
		}
	}
}

// TestIncrementalEqualsFull runs random histories night by night, with late rows and a row
// committed by a transaction that was open while a run read, and checks after every night that
// the incremental run recorded exactly what a full run of the same cutoff records. Trials after
// the first run under random terms of several versions (randomTerms).
func TestIncrementalEqualsFull(t *testing.T) {
	for trial := range 4 {
		t.Run(fmt.Sprintf("trial %d", trial), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(trial), 42))
			f := newFixture(t)
			ageLimits := false // whether the terms read users.created_at (new-account limits)
			if trial > 0 {
				terms := randomTerms(rng, date("2026-01-01"), 38)
				ageLimits = strings.Contains(terms, "max_account_age")
				f.useTerms(terms)
				f.r.Config.DrawSecret = []byte(secret)
			}
			history(f, rng)
			f.exec(`INSERT INTO users VALUES ('late_ref', '2026-01-01')`)
			f.exec(`UPDATE users SET country = (ARRAY['DE', 'US', NULL, 'zz', ' fr'])[1 + abs(hashtext(id)) % 5]`)
			f.exec(`INSERT INTO partner_enrollments (referrer_id, tier, enrolled_from, enrolled_by) VALUES ('ref1', 'partner', '2026-01-20', 'test')`)
			users := []string{"maker1", "maker2", "ref1_u1", "ref1_u2", "ref2_u3", "ref3_u4", "ref3_u5", "late_ref"}
			ctx := context.Background()
			incremental := 0
			for d := date("2026-02-01"); d.Before(date("2026-02-09")); d = d.AddDate(0, 0, 1) {
				day(f, rng, d, users)
				// A transaction opened before the run inserts a late row and commits after it.
				tx, err := f.db.Beginx()
				if err != nil {
					t.Fatal(err)
				}
				nextID++
				if _, err := tx.Exec(`INSERT INTO usage_events (id, user_id, product, template_id, amount_usd, runtime_seconds, occurred_at)
					VALUES ($1, 'ref1_u1', 'serverless', 'tpl1', 77.7, 5000, $2)`, nextID, d.AddDate(0, 0, -2)); err != nil {
					t.Fatal(err)
				}
				if d.Equal(date("2026-02-05")) { // a referral recorded late, dated in the past: the base no longer holds
					f.exec(`INSERT INTO referrals VALUES ('late_ref', 'ref2', '2026-01-20')`)
				}
				switch {
				case d.Equal(date("2026-02-06")): // usage, before any holding, of a user not recorded yet: an anomaly
					f.usage("ghost", "pod", "", "5", 100, d.AddDate(0, 0, -5).Format(time.RFC3339))
				case d.Equal(date("2026-02-07")): // the user appears: the base's anomalies no longer hold
					f.exec(`INSERT INTO users (id, created_at) VALUES ('ghost', '2026-01-01')`)
				case d.Equal(date("2026-02-08")): // a referred user's creation corrected: new-account limits decide anew
					f.exec(`UPDATE users SET created_at = created_at - interval '400 days' WHERE id = 'ref1_u1'`)
				}
				cutoff := d.AddDate(0, 0, 1)
				res, err := f.r.Run(ctx, jobs.RunOptions{AsOf: cutoff})
				if err != nil {
					t.Fatal(err)
				}
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
				agg := res.Plan.Summary.Aggregates
				if agg.Mode == "incremental" {
					incremental++
				}
				if d.Equal(date("2026-02-05")) && agg.Mode != "full" {
					t.Errorf("after a backdated referral: mode %q, want full", agg.Mode)
				}
				if d.Equal(date("2026-02-07")) && agg.Mode != "full" {
					t.Errorf("after a user unknown to the base appeared: mode %q, want full", agg.Mode)
				}
				if d.Equal(date("2026-02-08")) && ageLimits && agg.Mode != "full" {
					t.Errorf("after a referred user's creation changed under new-account limits: mode %q, want full", agg.Mode)
				}
				// The row committed after the nightly run: the next run of the cutoff, extending
				// the nightly one, finds it; a full run must agree.
				again, err := f.r.Run(ctx, jobs.RunOptions{AsOf: cutoff})
				if err != nil {
					t.Fatal(err)
				}
				if again.Plan.Summary.Aggregates.Mode != "incremental" {
					t.Errorf("re-run of %s: mode %q, want incremental", cutoff.Format(time.DateOnly), again.Plan.Summary.Aggregates.Mode)
				}
				if again.Plan.Summary.Aggregates.DeltaRows < 1 {
					t.Errorf("re-run of %s read %d rows, want the one committed after the nightly run",
						cutoff.Format(time.DateOnly), again.Plan.Summary.Aggregates.DeltaRows)
				}
				if d.Day()%2 == 1 {
					continue // let incremental runs chain on odd nights
				}
				keepAggregates(f, again.RunID)
				full, err := f.r.Run(ctx, jobs.RunOptions{AsOf: cutoff, Full: true})
				if err != nil {
					t.Fatal(err)
				}
				if full.Plan.Summary.UsageRows != again.Plan.Summary.UsageRows || full.Plan.Summary.Anomalies != again.Plan.Summary.Anomalies {
					t.Errorf("as of %s: full considered %d rows (%d anomalies), incremental %d (%d)", cutoff.Format(time.DateOnly),
						full.Plan.Summary.UsageRows, full.Plan.Summary.Anomalies, again.Plan.Summary.UsageRows, again.Plan.Summary.Anomalies)
				}
				if full.Plan.Summary.Grants != 0 {
					t.Errorf("as of %s: a full run after the incremental one granted %d, want nothing", cutoff.Format(time.DateOnly), full.Plan.Summary.Grants)
				}
				sameAggregates(t, f, full.RunID)
			}
			if f.grantCount() == 0 {
				t.Errorf("the history granted nothing")
			}
			// Of the 8 nights, the first reads the whole history, and so do the nights after a
			// backdated referral, after an unknown user appeared and (under new-account limits)
			// after a referred user's creation changed.
			want := 5
			if ageLimits {
				want = 4
			}
			if incremental != want {
				t.Errorf("%d of 8 nightly runs were incremental, want %d", incremental, want)
			}
		})
	}
}
