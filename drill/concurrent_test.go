package drill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/shopspring/decimal"

	"github.com/runpod/creditrecon/internal/exitcode"
	"github.com/runpod/creditrecon/jobs"
	"github.com/runpod/creditrecon/reconcile"
	sqlstore "github.com/runpod/creditrecon/sql"
	"github.com/runpod/creditrecon/terms"
)

// concurrentLock starts 4 to 6 runners at (nearly) the same instant: the advisory lock lets one
// in and turns the others away with exit 3; the ledger is the clean run's and one more plain run
// writes nothing.
func (w *world) concurrentLock(t *testing.T, tl *tally) {
	trials(t, tl, otherTrials(), w.tpl, w.ref, func(tr *trial) {
		n := 4 + tr.rng.IntN(3)
		env := tr.env("")
		procs := make([]*proc, n)
		for i := range procs {
			time.Sleep(time.Duration(tr.rng.IntN(20)) * time.Millisecond)
			procs[i] = start(tr.t, env, "run", "--as-of", cutoff)
		}
		tr.tl.fault(n - 1)
		ok := 0
		for i, p := range procs {
			code := p.wait(tr.t)
			tr.tl.exit(code)
			switch code {
			case exitcode.OK:
				ok++
			case exitcode.Locked:
				if !strings.Contains(p.stderr.String(), "in progress") {
					tr.t.Errorf("runner %d: exit 3 without saying another run is in progress: %s", i, p)
				}
			default:
				tr.t.Errorf("runner %d: exit %d, want 0 or 3: %s", i, code, p)
			}
		}
		if ok == 0 {
			tr.t.Errorf("%d runners at once: none succeeded", n)
		}
		tr.tl.note(fmt.Sprintf("%d of %d succeeded", ok, n))
		tr.settled()
		again, _ := tr.converge(env, "run", "--as-of", cutoff)
		if !strings.Contains(again.stdout.String(), ": 0 grants, 0.00 USD") {
			tr.t.Errorf("the run after the concurrent runners wrote grants: %s", again)
		}
		tr.final(env)
	})
}

// concurrentLockLost starts 4 to 6 runners that retry while the lock turns them away, and
// terminates the lock holder's backend (pg_terminate_backend, found through pg_locks) once or
// twice at a random instant: the lock is free at once, and another runner takes it while the
// first may still be in flight. No account may be granted twice; after all exit, a plain run
// converges to the clean ledger.
func (w *world) concurrentLockLost(t *testing.T, tl *tally) {
	trials(t, tl, otherTrials(), w.tpl, w.ref, func(tr *trial) {
		n, terminations := 4+tr.rng.IntN(3), 1+tr.rng.IntN(2)
		env := tr.env("")
		admin := openDB(tr.t, tr.tpl.admin)
		dbName := databaseName(tr.dsn)
		var (
			succeeded atomic.Bool
			done      atomic.Int32
			retries   atomic.Int32
			codes     = make([]int, n) // each runner's last exit
			wg        sync.WaitGroup
		)
		deadline := time.Now().Add(2 * time.Minute)
		for i := range n {
			jitter := rand.New(rand.NewPCG(tr.rng.Uint64(), uint64(i)))
			wg.Go(func() {
				defer done.Add(1)
				for {
					p := start(tr.t, env, "run", "--as-of", cutoff)
					codes[i] = p.wait(tr.t)
					if codes[i] == exitcode.OK {
						succeeded.Store(true)
					}
					if codes[i] != exitcode.Locked || succeeded.Load() || time.Now().After(deadline) {
						return
					}
					retries.Add(1)
					time.Sleep(time.Duration(50+jitter.IntN(100)) * time.Millisecond)
				}
			})
		}
		var terminated []string
		stop := func() bool { return done.Load() == int32(n) }
		for range terminations {
			delay := tr.uniform(tr.clean())
			if _, ok := waitForLockHolder(tr.t, admin, dbName, stop); !ok {
				break
			}
			// A random instant after a runner took the lock: terminate whoever holds it then.
			time.Sleep(delay)
			pid, ok := waitForLockHolder(tr.t, admin, dbName, stop)
			if !ok {
				break
			}
			var killed bool
			if err := admin.Get(&killed, "SELECT pg_terminate_backend($1)", pid); err != nil {
				tr.t.Errorf("terminate the lock holder: %v", err)
				break
			}
			if killed {
				tr.tl.fault(1)
				terminated = append(terminated, fmt.Sprintf("pid %d after %s", pid, delay.Round(time.Millisecond)))
			}
		}
		wg.Wait()
		for _, code := range codes {
			tr.tl.exit(code)
			if code != exitcode.OK && code != exitcode.Locked && code != exitcode.Failed {
				tr.t.Errorf("runner: last exit %d, want 0, 1 (its lock connection terminated) or 3", code)
			}
		}
		tr.tl.note(fmt.Sprintf("%d lock holder(s) terminated", len(terminated)))
		tr.tl.add(func() { tr.tl.notes["runs locked out and retried"] += int(retries.Load()) })
		tr.settled()
		tr.converge(env, "run", "--as-of", cutoff)
		tr.final(env)
		tr.t.Logf("%d runners, last exits %v after %d lock-outs, terminated %v", n, codes, retries.Load(), terminated)
	})
}

// waitForLockHolder polls pg_locks for the backend holding the run's advisory lock in database
// name; ok is false when stop() says there is nothing left to wait for.
func waitForLockHolder(t testing.TB, admin *sqlx.DB, name string, stop func() bool) (pid int, ok bool) {
	t.Helper()
	for !stop() {
		var pids []int
		if err := admin.Select(&pids, `SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database
			WHERE l.locktype = 'advisory' AND l.granted AND d.datname = $1`, name); err != nil {
			t.Errorf("find the lock holder: %v", err)
			return 0, false
		}
		if len(pids) > 0 {
			return pids[0], true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0, false
}

// concurrentNoLock is the defence behind the lock: writers that plan from the same state and
// commit without the lock's protection. The CLI always takes the lock, so this drives the store
// in process, in two phases:
//
//   - stale plans through the API: 2 to 4 writers plan (dry run) from the same state, each keeps
//     the whole plan or a random part of it, and commits through its own session as soon as the
//     lock lets it (Lock, StartRun, Transact with WriteGrants, FinishRun), as
//     TestStalePlanCannotDoubleGrant does; a plan that overlaps a committed one must fail whole
//     with ErrGrantConflict;
//   - no lock at all: 2 to 4 writers, each with a fresh plan or its stale one from the first
//     phase (or a part of it), open transactions on their own connections and insert their grants
//     with the store's own statement (sql/queries/grants_insert.sql) at the same instant.
//
// Overlapping plans must never both land; a plain run then converges to the clean ledger.
func (w *world) concurrentNoLock(t *testing.T, tl *tally) {
	insertSQL, err := os.ReadFile("../sql/queries/grants_insert.sql")
	if err != nil {
		t.Fatal(err)
	}
	asOf, _ := time.Parse(time.DateOnly, cutoff)
	trials(t, tl, otherTrials(), w.tpl, w.ref, func(tr *trial) {
		ctx := context.Background()
		st, err := sqlstore.Open(ctx, tr.dsn)
		if err != nil {
			tr.t.Fatal(err)
		}
		defer st.Close()
		cfg := jobs.DefaultConfig()
		cfg.Version = "drill"
		if *flagTerms != "" {
			t, err := terms.Load(*flagTerms)
			if err != nil {
				tr.t.Fatal(err)
			}
			cfg.Terms = jobs.TermsSource{File: *flagTerms, Terms: t}
			cfg.DrawSecret = []byte(drawSecret)
		}
		runner := &jobs.Runner{Store: st, Config: cfg, Log: slog.New(slog.DiscardHandler), Now: time.Now}
		// The writers record their terms as runs do: verify evaluates each grant under its run's.
		termsJSON, err := cfg.TermsRecord()
		if err != nil {
			tr.t.Fatal(err)
		}
		plan := func() []reconcile.Grant {
			res, err := runner.Run(ctx, jobs.RunOptions{AsOf: asOf, DryRun: true})
			if err != nil {
				tr.t.Errorf("dry run: %v", err)
				return nil
			}
			return res.Plan.Grants
		}
		// Writers that plan from the same state get the same plan: one dry run stands for all.
		plans := func(n int) [][]reconcile.Grant {
			p := plan()
			out := make([][]reconcile.Grant, n)
			for i := range out {
				out[i] = p
			}
			return out
		}
		outcome := func(err error) string {
			var pqErr *pq.Error
			switch {
			case err == nil:
				return "ok"
			case errors.Is(err, jobs.ErrGrantConflict):
				return "conflict"
			case errors.As(err, &pqErr) && pqErr.Code == "40P01":
				return "deadlock"
			}
			tr.t.Errorf("commit: %v", err)
			return "error"
		}

		// Phase 1: stale plans through the store's API, each commit under the lock in turn.
		n1 := 2 + tr.rng.IntN(3)
		stale := plans(n1)
		for i := range stale {
			stale[i] = part(tr.rng, stale[i])
		}
		results := make([]string, n1)
		var wg sync.WaitGroup
		for i, grants := range stale {
			wg.Go(func() { results[i] = outcome(commitThroughLock(ctx, st, termsJSON, asOf, grants)) })
		}
		wg.Wait()
		tr.tl.fault(n1 - 1)
		for _, r := range results {
			tr.tl.exitLabel("api-" + r)
		}
		tr.settled()
		if tr.t.Failed() {
			return
		}

		// Phase 2: no lock at all; fresh and stale plans inserted at the same instant.
		n2 := 2 + tr.rng.IntN(3)
		fresh := plans(n2)
		for i := range fresh {
			if i < len(stale) && tr.rng.IntN(2) == 0 {
				fresh[i] = stale[i]
			}
			fresh[i] = part(tr.rng, fresh[i])
		}
		db := openDB(tr.t, tr.dsn)
		db.SetMaxOpenConns(n2 + 1)
		results2 := make([]string, n2)
		var ready sync.WaitGroup
		ready.Add(n2)
		gate := make(chan struct{})
		for i, grants := range fresh {
			wg.Go(func() {
				results2[i] = outcome(commitWithoutLock(ctx, db, string(insertSQL), termsJSON, asOf, grants, &ready, gate))
			})
		}
		ready.Wait()
		close(gate)
		wg.Wait()
		tr.tl.fault(n2)
		for _, r := range results2 {
			tr.tl.exitLabel("sql-" + r)
		}
		tr.tl.note(fmt.Sprintf("lock bypassed by %d writers at once", n2))
		tr.t.Logf("phase 1 (%d stale plans, lock taken in turn): %v; phase 2 (%d writers, no lock): %v", n1, results, n2, results2)
		tr.settled()
		env := tr.env("")
		tr.converge(env, "run", "--as-of", cutoff)
		tr.final(env)
	})
}

// part returns all of grants or, half of the time, a random part of them: a plan may be a subset
// of another's (overlapping, must conflict) or disjoint from it (may land).
func part(rng *rand.Rand, grants []reconcile.Grant) []reconcile.Grant {
	if rng.IntN(2) == 0 {
		return grants
	}
	var out []reconcile.Grant
	for _, g := range grants {
		if rng.IntN(2) == 0 {
			out = append(out, g)
		}
	}
	return out
}

// commitThroughLock writes grants the way a run does: under the lock, in its own run.
func commitThroughLock(ctx context.Context, st *sqlstore.Store, terms json.RawMessage, asOf time.Time, grants []reconcile.Grant) error {
	var sess jobs.Session
	for {
		var err error
		sess, err = st.Lock(ctx, jobs.Shard{})
		if errors.Is(err, jobs.ErrLocked) {
			time.Sleep(2 * time.Millisecond)
			continue
		}
		if err != nil {
			return err
		}
		break
	}
	defer sess.Close()
	id, err := sess.StartRun(ctx, jobs.RunRecord{Kind: "run", AsOf: asOf, StartedAt: time.Now(), Version: "drill", Parameters: []byte("{}"),
		Terms: terms})
	if err != nil {
		return err
	}
	err = sess.Transact(ctx, func(s jobs.Snapshot) error {
		return s.WriteGrants(ctx, id, asOf, grants, summary(asOf, grants))
	})
	status, text := jobs.StatusSucceeded, ""
	if err != nil {
		status, text = jobs.StatusFailed, err.Error()
	}
	return errors.Join(err, sess.FinishRun(ctx, id, status, text))
}

func summary(asOf time.Time, grants []reconcile.Grant) jobs.Summary {
	s := jobs.Summary{AsOf: asOf, Grants: int64(len(grants))}
	for _, g := range grants {
		s.Amount = s.Amount.Add(g.Amount)
	}
	return s
}

// commitWithoutLock writes grants in one transaction on its own connection, with no lock, using
// the store's insert statement and its rule (every planned grant written, or none): it records a
// run, waits at the gate with the other writers, inserts, and commits.
func commitWithoutLock(ctx context.Context, db *sqlx.DB, insertSQL string, terms json.RawMessage, asOf time.Time, grants []reconcile.Grant,
	ready *sync.WaitGroup, gate chan struct{}) error {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		ready.Done()
		return err
	}
	defer tx.Rollback()
	var runID int64
	err = tx.GetContext(ctx, &runID, `INSERT INTO recon_runs (kind, as_of, status, version, parameters, terms)
		VALUES ('run', $1, 'running', 'drill', '{}', $2) RETURNING id`, asOf, terms)
	ready.Done()
	if err != nil {
		return err
	}
	<-gate
	n := len(grants)
	keys, programs, accounts, roles := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	beneficiaries, templates, referred := make([]string, n), make([]string, n), make([]string, n)
	amounts, before, spend, earned := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	termsIDs, payouts, kinds, drawU, drawEntry := make([]string, n), make([]string, n), make([]string, n), make([]any, n), make([]any, n)
	total := decimal.Zero
	for i, g := range grants {
		termsIDs[i], payouts[i] = g.TermsID, g.Payout
		if g.Bonus != nil {
			kinds[i] = g.Bonus.Kind
			if g.Bonus.Drawn != nil {
				drawU[i], drawEntry[i] = g.Bonus.Drawn.U.String(), int64(g.Bonus.Drawn.Entry)
			}
		}
		keys[i], programs[i], accounts[i], roles[i] = g.IdempotencyKey, string(g.Program), g.AccountID, g.Role
		beneficiaries[i], templates[i], referred[i] = g.BeneficiaryID, g.TemplateID, g.ReferredUser
		amounts[i], before[i] = g.Amount.StringFixed(2), g.GrantedBefore.StringFixed(2)
		spend[i], earned[i] = g.Spend.String(), g.Earned.String()
		total = total.Add(g.Amount)
	}
	res, err := tx.ExecContext(ctx, insertSQL, asOf, runID, pq.Array(keys), pq.Array(programs), pq.Array(accounts), pq.Array(roles),
		pq.Array(beneficiaries), pq.Array(templates), pq.Array(referred), pq.Array(amounts), pq.Array(before), pq.Array(spend), pq.Array(earned),
		pq.Array(termsIDs), pq.Array(payouts), pq.Array(kinds), pq.GenericArray{A: drawU}, pq.GenericArray{A: drawEntry})
	if err != nil {
		var pqErr *pq.Error
		if errors.As(err, &pqErr) && pqErr.Code == "23505" { // the chain trigger's refusal
			return fmt.Errorf("%w: %s", jobs.ErrGrantConflict, pqErr.Message)
		}
		return err
	}
	if written, err := res.RowsAffected(); err != nil {
		return err
	} else if written != int64(n) {
		return fmt.Errorf("wrote %d of %d grants: %w", written, n, jobs.ErrGrantConflict)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE recon_runs SET status = 'succeeded', finished_at = clock_timestamp(),
		grants_written = $2, amount_granted = $3, grants_committed_at = clock_timestamp() WHERE id = $1`, runID, n, total); err != nil {
		return err
	}
	return tx.Commit()
}
