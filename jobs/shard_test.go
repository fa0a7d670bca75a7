package jobs_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/runpod/creditrecon/internal/synth"
	"github.com/runpod/creditrecon/jobs"
	"github.com/runpod/creditrecon/reports"
)

// shardPopulation fills a fixture with a synthetic population of two months (self-referrals,
// refunds, late rows and anomalies included), accepts every referrer, and lowers the referral
// threshold so that every program grants.
func shardPopulation(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t)
	o := synth.Options{Seed: 7, UsageRows: 20000, Users: 1500, Templates: 120, Start: date("2026-01-01"), Days: 60,
		ReferralShare: 0.4, SelfReferrals: 3, AnomalyRate: 0.002}
	if _, err := synth.Generate(context.Background(), f.db, o); err != nil {
		t.Fatal(err)
	}
	f.exec(`INSERT INTO referral_acceptances (referrer_id, accepted_at, accepted_by)
		SELECT DISTINCT referrer_id, now(), 'test' FROM referrals`)
	f.r.Config.Params.Referral.MinReferrals = 2
	f.r.Config.Params.Referral.MinSpend = decimal.NewFromInt(10)
	f.r.Config.Params.Serverless.Threshold = decimal.NewFromInt(50)
	f.r.Config.MaxAnomalyShare = 0.05
	return f
}

// appendDay adds a day of usage, a fifth of it late rows for the days before.
func appendDay(t *testing.T, f *fixture, day string) {
	t.Helper()
	o := synth.Options{Seed: 7, UsageRows: 20000, Users: 1500, Templates: 120, Start: date("2026-01-01"), Days: 60,
		ReferralShare: 0.4, SelfReferrals: 3, AnomalyRate: 0.002}
	if _, err := synth.AppendDay(context.Background(), f.db, o, date(day), 400, 0.2); err != nil {
		t.Fatal(err)
	}
}

// runShards runs every shard of n at once and returns their results in shard order.
func runShards(t *testing.T, f *fixture, asOf string, n int) []*jobs.Result {
	t.Helper()
	results := make([]*jobs.Result, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			results[i], errs[i] = f.r.Run(context.Background(), jobs.RunOptions{AsOf: date(asOf), Shard: jobs.Shard{Index: i, Count: n}})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("shards of %d as of %s: %v", n, asOf, err)
	}
	return results
}

// grantKeys lists the idempotency keys of the ledger: equal keys mean the same grants, made
// from the same amounts granted before.
func grantKeys(t *testing.T, f *fixture) []string {
	t.Helper()
	var keys []string
	if err := f.db.Select(&keys, `SELECT idempotency_key || '=' || amount_usd::text FROM credit_grants ORDER BY 1`); err != nil {
		t.Fatal(err)
	}
	return keys
}

// withoutColumns drops the columns that name database rows (ids, times) from a CSV file.
func withoutColumns(t *testing.T, body []byte, drop ...string) [][]string {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var keep []int
	for i, name := range recs[0] {
		if !slices.Contains(drop, name) {
			keep = append(keep, i)
		}
	}
	out := make([][]string, len(recs))
	for r, rec := range recs {
		for _, i := range keep {
			out[r] = append(out[r], rec[i])
		}
	}
	slices.SortFunc(out[1:], func(a, b []string) int { return slices.Compare(a, b) })
	return out
}

// TestShardsEqualOneRun runs the same history twice, night by night: once unsharded, and once as
// an unsharded night (a weekly full run) followed by nights of three concurrent shards, the first
// extending the unsharded run and the next their own. The shards must write exactly the grants of
// the unsharded runs, their merged reports must be those of the unsharded run, and a shard run
// again must write nothing. The second case runs under random terms of several versions.
func TestShardsEqualOneRun(t *testing.T) {
	t.Run("built-in terms", func(t *testing.T) { shardsEqualOneRun(t, "") })
	t.Run("random terms", func(t *testing.T) {
		shardsEqualOneRun(t, randomTerms(rand.New(rand.NewPCG(7, 42)), date("2026-01-01"), 40))
	})
}

func shardsEqualOneRun(t *testing.T, terms string) {
	one, sharded := shardPopulation(t), shardPopulation(t)
	if terms != "" {
		for _, f := range []*fixture{one, sharded} {
			f.useTerms(terms)
			f.r.Config.DrawSecret = []byte(secret)
			f.exec(`INSERT INTO partner_enrollments (referrer_id, tier, enrolled_from, enrolled_by)
				SELECT referrer_id, 'partner', '2026-01-15', 'test' FROM referrals GROUP BY referrer_id ORDER BY count(*) DESC, referrer_id LIMIT 3`)
		}
	}
	oneDir, shardedDir := withFileReports(t, one), withFileReports(t, sharded)

	one.run("2026-02-01")
	weekly := sharded.run("2026-02-01")
	var want *jobs.Result
	for night, asOf := range []string{"2026-02-02", "2026-02-03"} {
		for _, f := range []*fixture{one, sharded} {
			appendDay(t, f, date(asOf).AddDate(0, 0, -1).Format(time.DateOnly))
		}
		want = one.run(asOf)
		if want.Plan.Summary.Aggregates.Mode != "incremental" {
			t.Errorf("unsharded, as of %s: mode %q, want incremental", asOf, want.Plan.Summary.Aggregates.Mode)
		}
		var grants int64
		for i, res := range runShards(t, sharded, asOf, 3) {
			agg := res.Plan.Summary.Aggregates
			if agg.Mode != "incremental" {
				t.Errorf("shard %d/3 as of %s: mode %q (%s), want incremental", i, asOf, agg.Mode, agg.FullBecause)
			}
			if night == 0 && agg.BaseRunID != weekly.RunID {
				t.Errorf("shard %d/3's first night extends run %d, want the unsharded run %d", i, agg.BaseRunID, weekly.RunID)
			}
			grants += res.Plan.Summary.Grants
		}
		if grants != want.Plan.Summary.Grants || grants == 0 {
			t.Errorf("as of %s: the shards wrote %d grants, the unsharded run %d", asOf, grants, want.Plan.Summary.Grants)
		}
		if a, b := grantKeys(t, one), grantKeys(t, sharded); !slices.Equal(a, b) || len(a) == 0 {
			t.Errorf("as of %s: ledgers differ: unsharded %d grants, sharded %d", asOf, len(a), len(b))
		}
	}
	programs := map[string]bool{}
	for k := range one.ledger() {
		programs[k[:bytes.IndexByte([]byte(k), '/')]] = true
	}
	if len(programs) != 3 && terms == "" {
		t.Errorf("the population granted in programs %v, want all three", slices.Sorted(maps.Keys(programs)))
	}

	// A shard run again writes nothing, and the last one out rewrites the same reports.
	again, err := sharded.r.Run(context.Background(), jobs.RunOptions{AsOf: date("2026-02-03"), Shard: jobs.Shard{Index: 1, Count: 3}})
	if err != nil {
		t.Fatal(err)
	}
	if again.Plan.Summary.Grants != 0 {
		t.Errorf("shard 1/3 run again wrote %d grants", again.Plan.Summary.Grants)
	}

	a, b := readAll(t, filepath.Join(oneDir, "dt=2026-02-02")), readAll(t, filepath.Join(shardedDir, "dt=2026-02-02"))
	if len(a) != 9 || len(b) != 9 {
		t.Fatalf("report files: unsharded %d, sharded %d, want 9 each", len(a), len(b))
	}
	for _, name := range []string{"referrers.csv", "templates.csv", "serverless_referrals.csv", "signup_bonuses.csv", "anomalies.csv"} {
		if !bytes.Equal(a[name], b[name]) {
			t.Errorf("%s: the shards' merged report differs from the unsharded run's", name)
		}
	}
	pa, pb := withoutColumns(t, a["payouts.csv"], "grant_id"), withoutColumns(t, b["payouts.csv"], "grant_id")
	if !slices.EqualFunc(pa, pb, slices.Equal) {
		t.Errorf("payouts.csv: %d rows unsharded, %d sharded, or they differ", len(pa)-1, len(pb)-1)
	}
	ga, gb := withoutColumns(t, a["grants.csv"], "grant_id", "run_id", "created_at"), withoutColumns(t, b["grants.csv"], "grant_id", "run_id", "created_at")
	if !slices.EqualFunc(ga, gb, slices.Equal) || len(ga) < 2 {
		t.Errorf("grants.csv: %d rows unsharded, %d sharded, or they differ", len(ga)-1, len(gb)-1)
	}
	ma, err := reports.ReadManifest(context.Background(), one.r.Sink, "2026-02-02")
	if err != nil {
		t.Fatal(err)
	}
	mb, err := reports.ReadManifest(context.Background(), sharded.r.Sink, "2026-02-02")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(ma.ControlTotals) != fmt.Sprint(mb.ControlTotals) || ma.Anomalies != mb.Anomalies ||
		fmt.Sprint(ma.Liability) != fmt.Sprint(mb.Liability) || len(ma.Liability) != 4 {
		t.Errorf("manifests differ:\nunsharded %v, %d anomalies, liability %v\nsharded   %v, %d anomalies, liability %v",
			ma.ControlTotals, ma.Anomalies, ma.Liability, mb.ControlTotals, mb.Anomalies, mb.Liability)
	}
	if len(mb.ShardRunIDs) != 3 || mb.ShardRunIDs[1] != again.RunID {
		t.Errorf("manifest shard_run_ids %v, want 3 runs with shard 1's newest (%d)", mb.ShardRunIDs, again.RunID)
	}
}

// TestReportsWaitForEveryShard: a shard alone writes no reports, and export says which shards
// are missing; the last shard writes them.
func TestReportsWaitForEveryShard(t *testing.T) {
	f := shardPopulation(t)
	dir := withFileReports(t, f)
	one := f.run("2026-02-01") // an unsharded run, then a newer sharded night of the same cutoff
	if _, err := f.r.Run(context.Background(), jobs.RunOptions{AsOf: date("2026-02-01"), Shard: jobs.Shard{Index: 0, Count: 2}}); err != nil {
		t.Fatal(err)
	}
	man, err := reports.ReadManifest(context.Background(), f.r.Sink, "2026-01-31")
	if err != nil || man.RunID != one.RunID {
		t.Fatalf("after shard 0/2 the manifest should still be the unsharded run %d's: %+v, %v", one.RunID, man.RunID, err)
	}
	_, err = f.r.Export(context.Background(), date("2026-02-01"))
	var incomplete *jobs.ShardsIncompleteError
	if !errors.As(err, &incomplete) || !slices.Equal(incomplete.Missing, []int{1}) || incomplete.Count != 2 {
		t.Fatalf("export with shard 1/2 missing: %v, want a ShardsIncompleteError naming shard 1", err)
	}
	res, err := f.r.Run(context.Background(), jobs.RunOptions{AsOf: date("2026-02-01"), Shard: jobs.Shard{Index: 1, Count: 2}})
	if err != nil {
		t.Fatal(err)
	}
	man, err = reports.ReadManifest(context.Background(), f.r.Sink, "2026-01-31")
	if err != nil {
		t.Fatal(err)
	}
	if man.RunID != res.RunID || len(man.ShardRunIDs) != 2 {
		t.Errorf("manifest after the last shard: run %d, shards %v; want run %d and two shards", man.RunID, man.ShardRunIDs, res.RunID)
	}
	if len(readAll(t, filepath.Join(dir, "dt=2026-01-31"))) != 9 {
		t.Error("the last shard did not write the nine report files")
	}
}

// TestShardLocks: shards of a night hold the run lock together; the same shard twice, or an
// unsharded run alongside a shard, is locked out.
func TestShardLocks(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	lock := func(s jobs.Shard) (jobs.Session, error) { return f.st.Lock(ctx, s) }
	s0, err := lock(jobs.Shard{Index: 0, Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	s1, err := lock(jobs.Shard{Index: 1, Count: 2})
	if err != nil {
		t.Fatalf("shard 1/2 next to shard 0/2: %v", err)
	}
	for _, s := range []jobs.Shard{{Index: 0, Count: 2}, {}} {
		if _, err := lock(s); !errors.Is(err, jobs.ErrLocked) {
			t.Errorf("lock %q while shards 0/2 and 1/2 run: %v, want ErrLocked", s, err)
		}
	}
	s0.Close()
	s1.Close()
	// The failed "0/2" above took the shared lock before failing on the shard's: it must not
	// stay on the pooled connection.
	all, err := lock(jobs.Shard{})
	if err != nil {
		t.Fatalf("unsharded after the shards released: %v", err)
	}
	if _, err := lock(jobs.Shard{Index: 1, Count: 2}); !errors.Is(err, jobs.ErrLocked) {
		t.Errorf("shard during an unsharded run: %v, want ErrLocked", err)
	}
	all.Close()
}

// TestCrashedShardIsAbandonedByItsShard: a shard marks its own crashed runs and unsharded ones
// abandoned, never another shard's, which may be running.
func TestCrashedShardIsAbandonedByItsShard(t *testing.T) {
	f := newFixture(t)
	f.exec(`INSERT INTO recon_runs (kind, as_of, status, parameters, shard_index, shard_count) VALUES
		('run', '2026-01-01', 'running', '{}', 0, 2), ('run', '2026-01-01', 'running', '{}', 1, 2),
		('run', '2026-01-01', 'running', '{}', NULL, NULL)`)
	if _, err := f.r.Run(context.Background(), jobs.RunOptions{AsOf: date("2026-02-01"), Shard: jobs.Shard{Index: 0, Count: 2}}); err != nil {
		t.Fatal(err)
	}
	var statuses []string
	if err := f.db.Select(&statuses, `SELECT status FROM recon_runs ORDER BY id`); err != nil {
		t.Fatal(err)
	}
	if want := []string{"abandoned", "running", "abandoned", "succeeded"}; fmt.Sprint(statuses) != fmt.Sprint(want) {
		t.Errorf("after shard 0/2: statuses %v, want %v", statuses, want)
	}
	f.run("2026-02-01")
	statuses = nil
	if err := f.db.Select(&statuses, `SELECT status FROM recon_runs ORDER BY id`); err != nil {
		t.Fatal(err)
	}
	if want := []string{"abandoned", "abandoned", "abandoned", "succeeded", "succeeded"}; fmt.Sprint(statuses) != fmt.Sprint(want) {
		t.Errorf("after an unsharded run: statuses %v, want %v", statuses, want)
	}
}
