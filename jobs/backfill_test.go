package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/runpod/creditrecon/jobs"
)

func TestCutoffsAreDailyAndDSTSafe(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 3, 7, 0, 0, 0, 0, ny)
	got := jobs.Cutoffs(from, time.Date(2026, 3, 10, 0, 0, 0, 0, ny), ny)
	var s []string
	for _, c := range got {
		s = append(s, c.Format(time.RFC3339))
	}
	want := "[2026-03-07T00:00:00-05:00 2026-03-08T00:00:00-05:00 2026-03-09T00:00:00-04:00 2026-03-10T00:00:00-04:00]"
	if fmt.Sprint(s) != want {
		t.Errorf("cutoffs %v, want %v", s, want)
	}
}

func TestBackfillOverlapsAndResumes(t *testing.T) {
	once := newFixture(t)
	history(once, rand.New(rand.NewPCG(5, 6)))
	once.run("2026-02-01")
	want := once.ledger()

	f := newFixture(t)
	history(f, rand.New(rand.NewPCG(5, 6)))
	f.run("2026-01-10")
	f.run("2026-01-12")

	// Stop the backfill after its fifth cutoff, as a SIGTERM would.
	ctx, cancel := context.WithCancel(context.Background())
	stopAt := date("2026-01-09")
	_, err := f.r.Backfill(ctx, jobs.BackfillOptions{From: date("2026-01-05"), To: date("2026-02-01"),
		Progress: func(done, total int, asOf time.Time, skipped bool) {
			if asOf.Equal(stopAt) {
				cancel()
			}
		}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted backfill: err = %v, want context.Canceled", err)
	}
	var ran int
	if err := f.db.Get(&ran, `SELECT count(*) FROM recon_runs WHERE kind = 'backfill' AND status = 'succeeded'`); err != nil {
		t.Fatal(err)
	}
	if ran != 4 {
		t.Errorf("before the interruption %d backfill runs succeeded, want 4 (Jan 5-8)", ran)
	}

	res, err := f.r.Backfill(context.Background(), jobs.BackfillOptions{From: date("2026-01-05"), To: date("2026-02-01")})
	if err != nil {
		t.Fatal(err)
	}
	// Jan 5-8 were backfilled, Jan 10 and 12 were run: 6 of 28 cutoffs skipped.
	if res.Cutoffs != 28 || res.Skipped != 6 || res.Ran != 22 {
		t.Errorf("resumed backfill: %+v, want 28 cutoffs, 6 skipped, 22 run", res)
	}
	if got := f.ledger(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after the backfill\n%v\nwant (one run)\n%v", got, want)
	}
	n := f.grantCount()
	res, err = f.r.Backfill(context.Background(), jobs.BackfillOptions{From: date("2026-01-01"), To: date("2026-02-01"), Redo: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ran != 32 || res.Grants != 0 || f.grantCount() != n {
		t.Errorf("redo over everything: %+v and %d grants, want 32 runs writing nothing (%d grants)", res, f.grantCount(), n)
	}
}

func TestServeFiresAndStops(t *testing.T) {
	f := newFixture(t)
	f.users("maker", "a")
	f.exec(`INSERT INTO templates VALUES ('tpl', 'maker', '2026-01-01')`)
	f.usage("a", "pod", "tpl", "100", 86400, "2026-06-05")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.r.Serve(ctx, "@every 1s") }()
	deadline := time.Now().Add(20 * time.Second)
	for f.granted("template", "maker") != "1.00" {
		if time.Now().After(deadline) {
			t.Fatal("the scheduler did not run the job within 20 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve returned %v, want nil on cancel", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop within 20 s of cancel")
	}
	var running int
	if err := f.db.Get(&running, `SELECT count(*) FROM recon_runs WHERE status = 'running'`); err != nil {
		t.Fatal(err)
	}
	if running != 0 {
		t.Errorf("%d runs left running after the scheduler stopped", running)
	}
}

func TestServeRejectsBadSchedules(t *testing.T) {
	for _, spec := range []string{"", "61 * * * *", "* * *", "@fortnightly", "every day"} {
		if _, err := jobs.ParseSchedule(spec); err == nil {
			t.Errorf("ParseSchedule(%q) accepted it", spec)
		}
	}
}
