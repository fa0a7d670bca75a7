package drill

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/runpod/creditrecon/internal/exitcode"
	"github.com/runpod/creditrecon/internal/pgtest"
	"github.com/runpod/creditrecon/internal/synth"
)

// The cutoffs of the drill. The synthetic history runs from 2025-01-01 to 2026-01-01, so a run
// as of 2026-01-01 sees all of it; the backfill runs the last three daily cutoffs.
const (
	cutoff       = "2026-01-01"
	backfillFrom = "2025-12-30"
	backfillTo   = "2026-01-01"
	businessDate = "2025-12-31" // the reports of cutoff are under dt=businessDate/
)

// procTimeout bounds every subprocess: a hung program fails its trial instead of the suite.
const procTimeout = 3 * time.Minute

// proc is creditrecon running as a subprocess.
type proc struct {
	args           []string
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan struct{}
	code           int // after done: the exit code, -1 when a signal ended it
	elapsed        time.Duration
}

// codeKilled is the exit code exec reports for a process ended by a signal.
const codeKilled = -1

// start starts `creditrecon args...` with env (see dbEnv); it is killed when the test ends if
// still running.
func start(t testing.TB, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{args: args, cmd: exec.Command(binary, args...), done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	began := time.Now()
	if err := p.cmd.Start(); err != nil {
		t.Errorf("start creditrecon %s: %v", strings.Join(args, " "), err)
		p.code = -2
		close(p.done)
		return p
	}
	go func() {
		err := p.cmd.Wait()
		p.elapsed = time.Since(began)
		p.code = p.cmd.ProcessState.ExitCode()
		var exitErr *exec.ExitError
		if err != nil && !errors.As(err, &exitErr) {
			p.code = -2
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		if p.kill() {
			<-p.done
		}
	})
	return p
}

// kill sends SIGKILL unless the process was already reaped; the exit code says whether the
// signal ended it (a process that had just exited reports its own code).
func (p *proc) kill() bool {
	select {
	case <-p.done:
		return false
	default:
		return p.cmd.Process.Signal(syscall.SIGKILL) == nil
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait returns the exit code; after procTimeout it kills the process and fails the test (it
// may be called from any goroutine).
func (p *proc) wait(t testing.TB) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(procTimeout):
		p.kill()
		<-p.done
		t.Errorf("creditrecon %s: still running after %s; killed\nstderr:\n%s", strings.Join(p.args, " "), procTimeout, p.stderr.String())
	}
	return p.code
}

func (p *proc) String() string {
	return fmt.Sprintf("creditrecon %s: exit %d after %s\nstdout:\n%s\nstderr:\n%s", strings.Join(p.args, " "), p.code,
		p.elapsed.Round(time.Millisecond), p.stdout.String(), tail(p.stderr.String(), 4000))
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// run runs a command to completion.
func run(t testing.TB, env []string, args ...string) *proc {
	t.Helper()
	p := start(t, env, args...)
	p.wait(t)
	return p
}

// runUnlocked runs a command again while another runner's lock turns it away (exit 3): a killed
// runner's server session keeps the lock until its current statement ends. It returns the last
// run and how many times the lock turned it away.
func runUnlocked(t testing.TB, env []string, args ...string) (*proc, int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for locked := 0; ; locked++ {
		p := run(t, env, args...)
		if p.code != exitcode.Locked || time.Now().After(deadline) {
			return p, locked
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// baseEnv is the test's environment without anything that configures creditrecon, PostgreSQL
// or the AWS SDK: each trial says exactly what the program sees.
func baseEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case name == "DATABASE_URL", name == "TEST_DATABASE_URL", name == "REPORTS_URL", name == "PUSHGATEWAY_URL",
			strings.HasPrefix(name, "CREDITRECON_"), strings.HasPrefix(name, "AWS_"), strings.HasPrefix(name, "S3_"),
			strings.HasPrefix(name, "PG"):
			continue
		}
		out = append(out, kv)
	}
	return out
}

// dbEnv points the program at a database and a reports location, plus extra variables.
func dbEnv(dsn, reportsURL string, extra ...string) []string {
	return append(append(baseEnv(), "DATABASE_URL="+dsn, "REPORTS_URL="+reportsURL, "CREDITRECON_LOG_FORMAT=json"), extra...)
}

// fileURL is a reports directory removed when the test ends.
func fileURL(t testing.TB) string { return "file://" + t.TempDir() }

// openDB opens a pool closed when the test ends. Trials open their own pools: a server restart
// leaves pooled connections dead.
func openDB(t testing.TB, dsn string) *sqlx.DB {
	t.Helper()
	db, err := sqlx.Open("postgres", dsn)
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	db.SetMaxOpenConns(4)
	t.Cleanup(func() { db.Close() })
	return db
}

// withDatabase returns dsn with another database name.
func withDatabase(dsn, name string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		panic(err)
	}
	u.Path = "/" + name
	return u.String()
}

func databaseName(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		panic(err)
	}
	return strings.TrimPrefix(u.Path, "/")
}

// template is a loaded, migrated database that nothing stays connected to, so that each trial
// can take a cheap copy of it (CREATE DATABASE ... TEMPLATE).
type template struct {
	dsn   string
	admin string // a database of the same server to run CREATE and DROP DATABASE from
	env   []string
}

var copies atomic.Int64

// copy creates a copy of the template for one trial, dropped when the test ends.
func (tpl *template) copy(t testing.TB) string {
	t.Helper()
	src := databaseName(tpl.dsn)
	name := fmt.Sprintf("%s_c%d", src, copies.Add(1))
	admin, err := sqlx.Open("postgres", tpl.admin)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	for attempt := 0; ; attempt++ {
		// The template's last connections may still be closing; after a server restart the
		// first connections may be refused while it starts.
		// FILE_COPY copies the files instead of logging every page in the WAL: faster here, and
		// it keeps crash recovery after a restart short. Servers before 15 lack the option.
		_, err = admin.Exec(fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s STRATEGY FILE_COPY", name, src))
		if err != nil && strings.Contains(err.Error(), "syntax error") || err != nil && strings.Contains(err.Error(), "strategy") {
			_, err = admin.Exec(fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, src))
		}
		if err == nil || attempt == 100 || !(strings.Contains(err.Error(), "being accessed by other users") ||
			strings.Contains(err.Error(), "starting up") || strings.Contains(err.Error(), "connection refused")) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("copy database %s: %v", src, err)
	}
	t.Cleanup(func() { dropDatabase(tpl.admin, name) })
	return withDatabase(tpl.dsn, name)
}

func dropDatabase(adminURL, name string) {
	admin, err := sqlx.Open("postgres", adminURL)
	if err != nil {
		return
	}
	defer admin.Close()
	admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
}

// newTemplate loads the synthetic population into a new database, migrates it with the binary
// and accepts into the Referral Program every referrer with 25 referrals (the operators' step),
// so that all three programs grant.
func newTemplate(t *testing.T, rows int, seed uint64) *template {
	t.Helper()
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	db, err := sqlx.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	opts := synth.DefaultOptions(rows)
	opts.Seed = int64(seed)
	sum, err := synth.Generate(ctx, db, opts)
	if err != nil {
		t.Fatalf("generate %d usage rows: %v", rows, err)
	}
	t.Logf("synthetic population (seed %d): %d users, %d referrals, %d templates, %d usage rows in %s",
		seed, sum.Users, sum.Referrals, sum.Templates, sum.UsageRows, sum.Elapsed.Round(time.Millisecond))
	if p := run(t, dbEnv(dsn, fileURL(t)), "migrate"); p.code != 0 {
		t.Fatalf("migrate: %s", p)
	}
	if _, err := db.Exec(`INSERT INTO referral_acceptances (referrer_id, accepted_by, note)
		SELECT referrer_id, 'drill', 'qualified referrer' FROM referrals GROUP BY referrer_id HAVING count(*) >= 25`); err != nil {
		t.Fatalf("accept referrers: %v", err)
	}
	// The biggest referrers move to the drill terms' partner tier in October (the operators' step).
	if _, err := db.Exec(`INSERT INTO partner_enrollments (referrer_id, tier, enrolled_from, enrolled_by)
		SELECT referrer_id, 'affiliate', '2025-10-01', 'drill' FROM referrals GROUP BY referrer_id HAVING count(*) >= 25
		ORDER BY count(*) DESC, referrer_id LIMIT 5`); err != nil {
		t.Fatalf("enroll referrers: %v", err)
	}
	if _, err := db.Exec("ANALYZE"); err != nil {
		t.Fatal(err)
	}
	tpl := &template{dsn: dsn, admin: pgtest.NewDatabase(t)}
	if *flagTerms != "" {
		path, err := filepath.Abs(*flagTerms)
		if err != nil {
			t.Fatal(err)
		}
		tpl.env = []string{"CREDITRECON_TERMS=" + path, "CREDITRECON_DRAW_SECRET=" + drawSecret}
	}
	return tpl
}

// derive makes a new template from tpl: a copy changed by sql, with extra environment for every
// command run on its copies.
func (tpl *template) derive(t *testing.T, sql string, env ...string) *template {
	t.Helper()
	dsn := tpl.copy(t)
	db, err := sqlx.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(sql); err != nil {
		t.Fatalf("derive template: %v", err)
	}
	if _, err := db.Exec("VACUUM ANALYZE"); err != nil {
		t.Fatal(err)
	}
	return &template{dsn: dsn, admin: tpl.admin, env: append(append([]string{}, tpl.env...), env...)}
}

// reference is what one clean run gives on a copy of a template: the ledger every trial must end
// with, how long it took, and its reports (file://).
type reference struct {
	ledger     ledger
	duration   time.Duration // the slower of the clean command and a repeat of it
	reportsDir string
	grants     int
}

// newReference runs args cleanly on a copy of tpl, then again (which must write nothing), and
// records the ledger, the slower duration and the reports.
func newReference(t *testing.T, tpl *template, args ...string) *reference {
	t.Helper()
	dsn := tpl.copy(t)
	dir := t.TempDir()
	ref := &reference{reportsDir: dir}
	for i := range 2 {
		p := run(t, dbEnv(dsn, "file://"+dir, tpl.env...), args...)
		if p.code != 0 {
			t.Fatalf("clean reference %d: %s", i+1, p)
		}
		ref.duration = max(ref.duration, p.elapsed)
		t.Logf("clean %s %d: %s: %s", args[0], i+1, p.elapsed.Round(time.Millisecond), firstLine(p.stdout.String()))
	}
	db := openDB(t, dsn)
	if v := audit(t, db, true); len(v) > 0 {
		t.Fatalf("the clean reference breaks invariants:\n%s", strings.Join(v, "\n"))
	}
	ref.ledger = readLedger(t, db)
	ref.grants = len(ref.ledger.grants)
	if ref.grants < 50 {
		t.Fatalf("reference: %d grants; want a population that grants in every program", ref.grants)
	}
	db.Close()
	return ref
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
