package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/runpod/creditrecon/internal/pgtest"
)

// mainEnv makes the test binary act as the creditrecon program: TestMain calls main() itself, so
// subprocess tests drive the real binary's code (signal handling and exit codes included) without
// a `go build`.
const mainEnv = "CREDITRECON_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) == "1" {
		main() // exits
	}
	pgtest.Main(m)
}

// procTimeout bounds every subprocess, so that a hung program fails the test instead of hanging it.
const procTimeout = 2 * time.Minute

// proc is the creditrecon program running as a subprocess.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan struct{}
	code           int // after done: the exit code, -1 when a signal ended it
}

// procEnv is the test's environment without anything that configures creditrecon, plus env.
func procEnv(env []string) []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if name == "DATABASE_URL" || name == "TEST_DATABASE_URL" || name == "REPORTS_URL" ||
			strings.HasPrefix(name, "CREDITRECON_") {
			continue
		}
		out = append(out, kv)
	}
	return append(append(out, mainEnv+"=1"), env...)
}

// startProc starts `creditrecon args...` with env added to a clean environment. The process is
// killed when the test ends if it is still running.
func startProc(t testing.TB, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(os.Args[0], args...), done: make(chan struct{})}
	p.cmd.Env = procEnv(env)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start creditrecon %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		err := p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		var exitErr *exec.ExitError
		if err != nil && !errors.As(err, &exitErr) {
			p.code = -2
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait waits for the process to end and returns its exit code; it kills it after procTimeout.
func (p *proc) wait(t testing.TB) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(procTimeout):
		p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("creditrecon %s: still running after %s; killed\nstderr:\n%s", strings.Join(p.cmd.Args[1:], " "), procTimeout, p.stderr.String())
	}
	return p.code
}

// runProc runs `creditrecon args...` as a subprocess to completion.
func runProc(t testing.TB, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	p := startProc(t, env, args...)
	code = p.wait(t)
	return code, p.stdout.String(), p.stderr.String()
}

// dbEnv is the environment that points the program at a database, with its reports in a
// directory of the test.
func dbEnv(t testing.TB, dsn string) []string {
	return []string{"DATABASE_URL=" + dsn, "REPORTS_URL=" + reportsURL(t)}
}

// reportsURL is a directory for reports that is removed when the test ends.
func reportsURL(t testing.TB) string { return "file://" + t.TempDir() }

// runInProc calls Run in this process, as main does, with the database given by flag.
func runInProc(ctx context.Context, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	err := Run(ctx, args, &out, &errb)
	code = exitCode(ctx, err, &errb)
	return code, out.String(), errb.String()
}

// mustRunInProc runs a command in process and fails the test unless it exits 0.
func mustRunInProc(t testing.TB, args ...string) string {
	t.Helper()
	code, stdout, stderr := runInProc(context.Background(), args...)
	if code != 0 {
		t.Fatalf("creditrecon %s: exit %d, want 0\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, stdout, stderr)
	}
	return stdout
}

// openDB opens a pool on dsn that closes when the test ends.
func openDB(t testing.TB, dsn string) *sqlx.DB {
	t.Helper()
	db, err := sqlx.Open("postgres", dsn)
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func count(t testing.TB, db *sqlx.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.Get(&n, query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// grantState is the grants ledger reduced to what must match between runs: the sum per account
// (program, account_id, role) and the number of grants.
type grantState struct {
	Count int
	Sums  map[string]string
	Total string
}

func readGrants(t testing.TB, db *sqlx.DB) grantState {
	t.Helper()
	var rows []struct {
		Key string `db:"key"`
		N   int    `db:"n"`
		Sum string `db:"sum"`
	}
	if err := db.Select(&rows, `SELECT program || '/' || account_id || '/' || role AS key, count(*) AS n,
		sum(amount_usd)::text AS sum FROM credit_grants GROUP BY 1 ORDER BY 1`); err != nil {
		t.Fatalf("read grants: %v", err)
	}
	s := grantState{Sums: map[string]string{}}
	for _, r := range rows {
		s.Count += r.N
		s.Sums[r.Key] = r.Sum
	}
	if err := db.Get(&s.Total, `SELECT coalesce(sum(amount_usd), 0)::numeric(14,2)::text FROM credit_grants`); err != nil {
		t.Fatalf("sum grants: %v", err)
	}
	return s
}

// diffGrants describes how got differs from want per account; "" when the sums agree.
func diffGrants(got, want grantState) string {
	var b strings.Builder
	for k, w := range want.Sums {
		if g := got.Sums[k]; g != w {
			fmt.Fprintf(&b, "  %s: got %q, want %q\n", k, g, w)
		}
	}
	for k, g := range got.Sums {
		if _, ok := want.Sums[k]; !ok {
			fmt.Fprintf(&b, "  %s: got %q, want no grant\n", k, g)
		}
	}
	if got.Total != want.Total {
		fmt.Fprintf(&b, "  total: got %s, want %s\n", got.Total, want.Total)
	}
	return b.String()
}

// checkLedger checks the invariants that hold after anything: no duplicate key, every grant
// belongs to an existing run and continues its account's chain, and a run's grants are all there
// (grants_committed_at set, grants_written of them) or none.
func checkLedger(t testing.TB, db *sqlx.DB) {
	t.Helper()
	if n := count(t, db, `SELECT count(*) FROM (SELECT idempotency_key FROM credit_grants
		GROUP BY 1 HAVING count(*) > 1) d`); n != 0 {
		t.Errorf("duplicate idempotency keys: got %d, want 0", n)
	}
	if n := count(t, db, `SELECT count(*) FROM (SELECT program, account_id, role, granted_before_usd
		FROM credit_grants GROUP BY 1, 2, 3, 4 HAVING count(*) > 1) d`); n != 0 {
		t.Errorf("two grants from the same account state: got %d, want 0", n)
	}
	if n := count(t, db, `SELECT count(*) FROM credit_grants g LEFT JOIN recon_runs r ON r.id = g.run_id
		WHERE r.id IS NULL`); n != 0 {
		t.Errorf("grants without a run: got %d, want 0", n)
	}
	if n := count(t, db, `SELECT count(*) FROM (
		SELECT granted_before_usd, coalesce(sum(amount_usd) OVER (PARTITION BY program, account_id, role ORDER BY id
		       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
		  FROM credit_grants) c WHERE before <> granted_before_usd`); n != 0 {
		t.Errorf("grants whose granted_before_usd is not the sum of their account's earlier grants: got %d, want 0", n)
	}
	var partial []struct {
		ID        int64  `db:"id"`
		Status    string `db:"status"`
		Committed bool   `db:"committed"`
		Written   int64  `db:"written"`
		Found     int64  `db:"found"`
	}
	if err := db.Select(&partial, `SELECT r.id, r.status, r.grants_committed_at IS NOT NULL AS committed,
		coalesce(r.grants_written, 0) AS written, count(g.id) AS found
		  FROM recon_runs r LEFT JOIN credit_grants g ON g.run_id = r.id
		 GROUP BY r.id
		HAVING count(g.id) <> CASE WHEN r.grants_committed_at IS NULL THEN 0 ELSE coalesce(r.grants_written, 0) END`); err != nil {
		t.Fatalf("check runs' grants: %v", err)
	}
	for _, r := range partial {
		t.Errorf("run %d (%s, committed %t): has %d grants, its ledger row says %d: partial grants", r.ID, r.Status, r.Committed, r.Found, r.Written)
	}
}

// runStatuses returns the status of every run, by id.
func runStatuses(t testing.TB, db *sqlx.DB) map[int64]string {
	t.Helper()
	var rows []struct {
		ID     int64  `db:"id"`
		Status string `db:"status"`
	}
	if err := db.Select(&rows, `SELECT id, status FROM recon_runs ORDER BY id`); err != nil {
		t.Fatalf("read runs: %v", err)
	}
	m := map[int64]string{}
	for _, r := range rows {
		m[r.ID] = r.Status
	}
	return m
}
