package drill

import (
	"fmt"
	"testing"
	"time"

	"github.com/runpod/creditrecon/internal/exitcode"
)

// sigkillRun kills `creditrecon run` at an instant drawn uniformly over a clean run's duration,
// then runs it again: the ledger must be the clean run's, grant for grant.
func (w *world) sigkillRun(t *testing.T, tl *tally) {
	trials(t, tl, kills(), w.tpl, w.ref, func(tr *trial) {
		tr.sigkill("run", "--as-of", cutoff)
	})
}

// sigkillBackfill kills `creditrecon backfill` (three cutoffs) at an instant drawn uniformly
// over a clean backfill's duration, then runs the same backfill again, which resumes: the ledger
// must be the clean backfill's, grant for grant (each grant with its cutoff).
func (w *world) sigkillBackfill(t *testing.T, tl *tally) {
	trials(t, tl, backfillKills(), w.tpl, w.refBackfill, func(tr *trial) {
		tr.sigkill("backfill", "--from", backfillFrom, "--to", backfillTo)
	})
}

func (tr *trial) sigkill(args ...string) {
	env := tr.env("")
	delay := tr.uniform(tr.clean())
	p := start(tr.t, env, args...)
	time.Sleep(delay)
	p.kill()
	code := p.wait(tr.t)
	tr.tl.exit(code)
	switch code {
	case codeKilled:
		tr.tl.fault(1)
	case exitcode.OK: // it had finished
	default:
		tr.t.Errorf("killed %s: exit %d, want killed (or 0 had it finished): %s", args[0], code, p)
	}
	phase := tr.killPhase(args[0] == "backfill")
	tr.tl.note(phase)
	tr.settled()
	again, locked := tr.converge(env, args...)
	if locked > 0 {
		tr.tl.note("re-run locked out by the killed runner's session")
	}
	tr.final(env)
	tr.t.Logf("kill after %s: %s; the re-run was locked out %d times, then: %s", delay.Round(time.Millisecond), phase, locked,
		firstLine(again.stdout.String()))
}

// killPhase says where a kill landed, from the run ledger as the killed runner left it (nothing
// has marked its run abandoned yet).
func (tr *trial) killPhase(backfill bool) string {
	db := openDB(tr.t, tr.dsn)
	defer db.Close()
	var runs []struct {
		Status    string `db:"status"`
		Committed bool   `db:"committed"`
	}
	if err := db.Select(&runs, `SELECT status, grants_committed_at IS NOT NULL AS committed FROM recon_runs ORDER BY id`); err != nil {
		tr.t.Fatal(err)
	}
	succeeded := 0
	for _, r := range runs {
		if r.Status == "succeeded" {
			succeeded++
		}
	}
	var where string
	switch last := len(runs) - 1; {
	case last < 0:
		where = "before the ledger row"
	case runs[last].Status == "running" && runs[last].Committed:
		where = "after committing grants, before finishing"
	case runs[last].Status == "running":
		where = "before committing grants"
	case backfill:
		where = "between runs"
	default:
		where = "after finishing"
	}
	if backfill {
		return fmt.Sprintf("%d of 3 cutoffs done, %s", succeeded, where)
	}
	return where
}

// sigkillShard runs the night as three shards at once, as an Indexed Job does, and kills one of
// them at an instant drawn uniformly over a clean run's duration; then every shard runs again,
// as the Job retries it. The shards' ledger must be one clean unsharded run's, grant for grant,
// and the reports the last shard merges must tie out.
func (w *world) sigkillShard(t *testing.T, tl *tally) {
	trials(t, tl, kills(), w.tpl, w.ref, func(tr *trial) {
		const n = 3
		env := tr.env("")
		shard := func(i int) []string { return []string{"run", "--as-of", cutoff, "--shard", fmt.Sprintf("%d/%d", i, n)} }
		victim, delay := tr.rng.IntN(n), tr.uniform(tr.clean())
		procs := make([]*proc, n)
		for i := range procs {
			procs[i] = start(tr.t, env, shard(i)...)
		}
		time.Sleep(delay)
		procs[victim].kill()
		for i, p := range procs {
			code := p.wait(tr.t)
			tr.tl.exit(code)
			switch {
			case i == victim && code == codeKilled:
				tr.tl.fault(1)
			case code == exitcode.OK:
			default:
				tr.t.Errorf("shard %d/%d: exit %d, want 0 (or killed, for shard %d): %s", i, n, code, victim, p)
			}
		}
		tr.settled()
		for i := range n {
			tr.converge(env, shard(i)...)
		}
		tr.final(env)
		tr.t.Logf("killed shard %d/%d after %s", victim, n, delay.Round(time.Millisecond))
	})
}
