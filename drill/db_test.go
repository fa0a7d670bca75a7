package drill

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/runpod/creditrecon/internal/exitcode"
)

// dbFaultExit checks the exit of a run under a database fault: it failed cleanly (1) or, when the
// fault missed it, succeeded (0).
func (tr *trial) dbFaultExit(p *proc, hit bool) {
	tr.t.Helper()
	code := p.wait(tr.t)
	tr.tl.exit(code)
	switch {
	case code == exitcode.Failed:
	case code == exitcode.OK && !hit:
	default:
		tr.t.Errorf("run under a database fault (hit: %t): exit %d, want 1 (or 0 when the fault missed it): %s", hit, code, p)
	}
}

// terminateWhen polls pg_stat_activity for a backend of the trial's database (other than the
// poller's) matching cond and terminates it; it gives up when the run exits. It returns what the
// backend was running.
func (tr *trial) terminateWhen(db *sqlx.DB, p *proc, cond string) (what string, ok bool) {
	tr.t.Helper()
	name := databaseName(tr.dsn)
	for !p.exited() {
		var rows []struct {
			PID   int    `db:"pid"`
			Query string `db:"query"`
		}
		if err := db.Select(&rows, `SELECT pid, query FROM pg_stat_activity
			WHERE datname = $1 AND pid <> pg_backend_pid() AND (`+cond+`)`, name); err != nil {
			tr.t.Errorf("poll pg_stat_activity: %v", err)
			return "", false
		}
		for _, r := range rows {
			var killed bool
			if err := db.Get(&killed, "SELECT pg_terminate_backend($1)", r.PID); err != nil {
				tr.t.Errorf("terminate backend %d: %v", r.PID, err)
				return "", false
			}
			if killed {
				return queryName(r.Query), true
			}
		}
		time.Sleep(time.Millisecond)
	}
	return "", false
}

// queryName names a statement of the store by its first words after the comments.
func queryName(q string) string {
	var words []string
	for _, line := range strings.Split(q, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "--") {
			continue
		}
		words = append(words, strings.Fields(line)...)
		if len(words) >= 4 {
			break
		}
	}
	return strings.Join(words[:min(4, len(words))], " ")
}

// dbKillRead terminates the run's backend while it reads the usage (building the anomalies,
// counting rows, streaming the aggregates of one of the programs), after a random delay: the run
// fails cleanly with nothing written, and the next run converges.
func (w *world) dbKillRead(t *testing.T, tl *tally) {
	trials(t, tl, otherTrials(), w.tpl, w.ref, func(tr *trial) {
		admin := openDB(tr.t, tr.tpl.admin)
		env := tr.env("")
		delay := tr.uniform(tr.clean() * 3 / 4)
		p := start(tr.t, env, "run", "--as-of", cutoff)
		time.Sleep(delay)
		what, hit := tr.terminateWhen(admin, p, `state = 'active' AND query ILIKE '%usage_events%'`)
		tr.dbFaultExit(p, hit)
		if hit {
			tr.tl.fault(1)
			tr.tl.note("killed during " + what)
		} else {
			tr.tl.note("missed: the run had finished reading")
		}
		tr.settled()
		tr.converge(env, "run", "--as-of", cutoff)
		tr.final(env)
		tr.t.Logf("after %s: killed %t during %q", delay.Round(time.Millisecond), hit, what)
	})
}

// dbKillWrite terminates the run's backend in the middle of writing its grants. Even trials make
// sure of it: the trial's copy gets a statement trigger on credit_grants that sleeps after an
// INSERT, so the run's transaction is caught with every grant inserted and nothing committed.
// Odd trials race the run instead, polling for its grant INSERT or its counts' UPDATE. Either way
// the run fails cleanly with no grant written, and the next run converges.
func (w *world) dbKillWrite(t *testing.T, tl *tally) {
	trials(t, tl, otherTrials(), w.tpl, w.ref, func(tr *trial) {
		admin := openDB(tr.t, tr.tpl.admin)
		env := tr.env("")
		stall := tr.rng.IntN(2) == 0
		if stall {
			db := openDB(tr.t, tr.dsn)
			if _, err := db.Exec(stallTrigger); err != nil {
				tr.t.Fatalf("install the stall trigger: %v", err)
			}
			db.Close()
		}
		p := start(tr.t, env, "run", "--as-of", cutoff)
		var what string
		var hit bool
		if stall {
			what, hit = tr.terminateWhen(admin, p, `state = 'active' AND wait_event = 'PgSleep' AND query ILIKE '%INSERT INTO credit_grants%'`)
			what = "the grant INSERT, every grant inserted, uncommitted"
			db := openDB(tr.t, tr.dsn)
			if _, err := db.Exec("TRUNCATE drill_stall"); err != nil { // no more sleeping
				tr.t.Fatal(err)
			}
			db.Close()
		} else {
			what, hit = tr.terminateWhen(admin, p, `state <> 'idle' AND (query ILIKE '%INSERT INTO credit_grants%'
				OR query ILIKE 'UPDATE recon_runs SET usage_rows%')`)
			what = "raced: " + what
		}
		tr.dbFaultExit(p, hit)
		if hit {
			tr.tl.fault(1)
			tr.tl.note("killed during " + what)
		} else {
			tr.tl.note(fmt.Sprintf("missed (stall %t): the write had committed", stall))
		}
		tr.settled()
		tr.converge(env, "run", "--as-of", cutoff)
		tr.final(env)
		tr.t.Logf("stall %t: killed %t during %q", stall, hit, what)
	})
}

// stallTrigger makes every INSERT into credit_grants sleep after its last row while drill_stall
// has a row: a window in which a run's transaction holds all its grants, uncommitted. It is test
// scaffolding on the trial's copy only; the audit does not look at it.
const stallTrigger = `
CREATE TABLE drill_stall (on_ boolean);
INSERT INTO drill_stall VALUES (true);
CREATE FUNCTION drill_stall() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM drill_stall) THEN
    PERFORM pg_sleep(5);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER drill_stall AFTER INSERT ON credit_grants FOR EACH STATEMENT EXECUTE FUNCTION drill_stall();`

// dbRestart restarts PostgreSQL (an immediate stop, as a crash, then a start) at an instant drawn
// uniformly over a clean run: the run fails cleanly or had finished, and the next run converges.
func (w *world) dbRestart(t *testing.T, tl *tally) {
	if cluster == nil {
		t.Skip("TEST_DATABASE_URL names a server the drill cannot restart")
	}
	trials(t, tl, otherTrials(), w.tpl, w.ref, func(tr *trial) {
		env := tr.env("")
		delay := tr.uniform(tr.clean())
		p := start(tr.t, env, "run", "--as-of", cutoff)
		time.Sleep(delay)
		hit := !p.exited()
		began := time.Now()
		if err := cluster.Restart(context.Background()); err != nil {
			tr.t.Fatalf("restart PostgreSQL: %v", err)
		}
		tr.tl.fault(1)
		tr.dbFaultExit(p, false) // a run may finish while the server stops
		tr.tl.note(map[bool]string{true: "restarted during the run", false: "restarted after the run"}[hit])
		tr.settled()
		tr.converge(env, "run", "--as-of", cutoff)
		tr.final(env)
		tr.t.Logf("restart after %s (took %s): run exit %d", delay.Round(time.Millisecond), time.Since(began).Round(time.Millisecond), p.code)
	})
}

// dbStatementTimeout runs with a statement_timeout (set in the connection URL) drawn
// log-uniformly from 5 ms to a clean run's duration: the run fails cleanly when a statement is
// cancelled, and the next run, without the timeout, converges.
func (w *world) dbStatementTimeout(t *testing.T, tl *tally) {
	trials(t, tl, otherTrials(), w.tpl, w.ref, func(tr *trial) {
		hi := math.Log(float64(tr.clean().Milliseconds()))
		ms := int(math.Exp(math.Log(5) + tr.rng.Float64()*(hi-math.Log(5))))
		u, err := url.Parse(tr.dsn)
		if err != nil {
			tr.t.Fatal(err)
		}
		q := u.Query()
		q.Set("options", fmt.Sprintf("-c statement_timeout=%dms", ms))
		u.RawQuery = q.Encode()
		env := tr.env("", "DATABASE_URL="+u.String()) // the later DATABASE_URL wins
		p := start(tr.t, env, "run", "--as-of", cutoff)
		fired := false
		p.wait(tr.t)
		if strings.Contains(p.stderr.String(), "statement timeout") {
			fired = true
			tr.tl.fault(1)
			tr.tl.note("cancelled by the timeout")
		} else {
			tr.tl.note("finished within the timeout")
		}
		tr.dbFaultExit(p, fired)
		tr.settled()
		env = tr.env("")
		tr.converge(env, "run", "--as-of", cutoff)
		tr.final(env)
		tr.t.Logf("statement_timeout %dms: exit %d, cancelled %t", ms, p.code, fired)
	})
}
