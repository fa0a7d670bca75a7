package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/runpod/creditrecon/internal/exitcode"
	"github.com/runpod/creditrecon/internal/pgtest"
	"github.com/runpod/creditrecon/internal/s3test"
	"github.com/runpod/creditrecon/reports"
	sqlstore "github.com/runpod/creditrecon/sql"
)

// rolesMu serialises applying roles.sql: roles are shared by every database of the server, and
// two sessions granting the same membership at once can collide.
var rolesMu sync.Mutex

func applyRoles(t *testing.T, db *sqlx.DB) {
	t.Helper()
	rolesMu.Lock()
	defer rolesMu.Unlock()
	pgtest.Exec(t, db, sqlstore.RolesSQL)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// loginURL is dsn with another user (and password, when not empty).
func loginURL(t *testing.T, dsn, user, password string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if password != "" {
		u.User = url.UserPassword(user, password)
	} else {
		u.User = url.User(user)
	}
	return u.String()
}

// newLogin creates a login role on the test server, dropped (with what it owns in dsn's
// database) when the test ends. sql is appended to CREATE ROLE name LOGIN.
func newLogin(t *testing.T, admin *sqlx.DB, prefix, options string) string {
	t.Helper()
	name := prefix + "_" + randomHex(4)
	pgtest.Exec(t, admin, "CREATE ROLE "+name+" LOGIN "+options)
	t.Cleanup(func() {
		admin.Exec("DROP OWNED BY " + name)
		admin.Exec("DROP ROLE IF EXISTS " + name)
	})
	return name
}

// sqlErr runs query on db and returns its error, nil when it succeeds.
func sqlErr(db *sqlx.DB, query string) error {
	_, err := db.Exec(query)
	return err
}

// TestLeastPrivilegeRoles applies sql/roles/roles.sql (twice before and once after migrate), then
// drives the real program under a login in each role: the owner migrates; the nightly job's
// login runs end to end but can change no grant, write no source table and run no DDL; an
// operator accepts; finance reads and cannot write.
func TestLeastPrivilegeRoles(t *testing.T) {
	admin, dsn := pgtest.Open(t)
	applyRoles(t, admin)
	applyRoles(t, admin) // idempotent
	owner := newLogin(t, admin, "cr_migrator", "IN ROLE creditrecon_owner")
	pgtest.Exec(t, admin, "ALTER ROLE "+owner+" SET role = 'creditrecon_owner'")
	nightly := newLogin(t, admin, "cr_nightly", "IN ROLE creditrecon_job")
	operator := newLogin(t, admin, "cr_ops", "IN ROLE creditrecon_operator")
	finance := newLogin(t, admin, "cr_finance", "IN ROLE creditrecon_finance")
	ownerURL, jobURL := loginURL(t, dsn, owner, ""), loginURL(t, dsn, nightly, "")
	opsURL, financeURL := loginURL(t, dsn, operator, ""), loginURL(t, dsn, finance, "")
	one := openDB(t, dsn)
	one.SetMaxOpenConns(1) // the fixture's temp table lives in a session
	pgtest.Exec(t, one, fixtureSQL)
	pgtest.Exec(t, one, `INSERT INTO credit_loads (id, user_id, amount_usd, loaded_at)
		SELECT 1, referred_user_id, 20, referred_at + interval '1 day' FROM referrals WHERE referred_user_id = 'dave'`)

	// The job's login cannot create the job-owned tables; the owner's can.
	if code, _, stderr := runInProc(context.Background(), "migrate", "--database-url", jobURL); code != exitcode.Failed ||
		!strings.Contains(stderr, "permission denied") {
		t.Errorf("migrate as the job: exit %d, want 1 with permission denied\n%s", code, stderr)
	}
	mustRunInProc(t, "migrate", "--database-url", ownerURL)
	var tableOwner string
	if err := admin.Get(&tableOwner, `SELECT tableowner FROM pg_tables WHERE tablename = 'credit_grants'`); err != nil || tableOwner != "creditrecon_owner" {
		t.Errorf("credit_grants owner: %q (%v), want creditrecon_owner", tableOwner, err)
	}
	applyRoles(t, admin) // grants on the tables migrate created
	applyRoles(t, admin)
	// Up to date, migrate under the job's login is a harmless check (k8s runs it before each run).
	mustRunInProc(t, "migrate", "--database-url", jobURL)

	// Acceptances are the operator's.
	if code, _, stderr := runInProc(context.Background(), "accept", "ref_alice", "--by", "x", "--database-url", jobURL); code != exitcode.Failed ||
		!strings.Contains(stderr, "permission denied") {
		t.Errorf("accept as the job: exit %d, want 1 with permission denied\n%s", code, stderr)
	}
	for _, r := range acceptedReferrers {
		mustRunInProc(t, "accept", r, "--by", "ops-test", "--database-url", opsURL)
	}

	// The nightly job, end to end, under its own login.
	dir := t.TempDir()
	job := []string{"--database-url", jobURL, "--reports-url", "file://" + dir}
	mustRunInProc(t, append([]string{"run", "--as-of", cutoff, "--dry-run"}, job...)...)
	out := mustRunInProc(t, append([]string{"run", "--as-of", cutoff}, job...)...)
	if !strings.Contains(out, "4 grants, 1071.12 USD") {
		t.Errorf("run as the job: want 4 grants, 1071.12 USD in\n%s", out)
	}
	if got := readGrants(t, admin); diffGrants(got, fixtureGrants) != "" {
		t.Errorf("grants written by the job's login:\n%s", diffGrants(got, fixtureGrants))
	}
	if _, err := os.Stat(filepath.Join(dir, "dt=2026-02-28", "manifest.json")); err != nil {
		t.Errorf("reports of the job's run: %v", err)
	}
	mustRunInProc(t, append([]string{"run", "--as-of", cutoff}, job...)...) // a re-run: updates its ledger row only
	mustRunInProc(t, append([]string{"export", "--as-of", cutoff}, job...)...)
	mustRunInProc(t, "explain", "ref_alice", "--as-of", cutoff, "--database-url", jobURL)
	mustRunInProc(t, "runs", "--database-url", jobURL)
	mustRunInProc(t, append([]string{"verify"}, job...)...)
	mustRunInProc(t, "runs", "--database-url", financeURL)

	denied := func(who string, db *sqlx.DB, query, want string) {
		t.Helper()
		err := sqlErr(db, query)
		var pqErr *pq.Error
		if !errors.As(err, &pqErr) || pqErr.Code != "42501" || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %s: got %v, want an error containing %q", who, query, err, want)
		}
	}
	jobDB, ownerDB, financeDB := openDB(t, jobURL), openDB(t, ownerURL), openDB(t, financeURL)
	for _, q := range []string{
		`UPDATE credit_grants SET amount_usd = amount_usd * 2`,
		`DELETE FROM credit_grants`,
		`TRUNCATE credit_grants`,
		`UPDATE referral_acceptances SET note = 'x'`,
		`UPDATE credit_accounts SET granted_usd = 0`,
		`INSERT INTO credit_accounts VALUES ('referral', 'x', '', 'x', 1, 1)`,
		`DELETE FROM recon_runs`,
		`INSERT INTO usage_events (id, user_id, product, amount_usd, occurred_at) VALUES (-1, 'x', 'pod', 1, now())`,
		`UPDATE users SET created_at = now()`,
		`DELETE FROM referrals`,
		`TRUNCATE templates`,
	} {
		denied("the job", jobDB, q, "permission denied")
	}
	denied("the job", jobDB, `CREATE TABLE evil (id int)`, "permission denied for schema")
	for _, q := range []string{
		`ALTER TABLE credit_grants ADD COLUMN evil int`,
		`ALTER TABLE credit_grants DISABLE TRIGGER credit_grants_no_update`,
		`DROP TABLE credit_grants`,
		`DROP TRIGGER credit_grants_no_update ON credit_grants`,
	} {
		denied("the job", jobDB, q, "must be owner of")
	}
	// Even the owner cannot change or remove a grant: the triggers refuse.
	for _, q := range []string{`UPDATE credit_grants SET amount_usd = amount_usd * 2`, `DELETE FROM credit_grants`, `TRUNCATE credit_grants`} {
		denied("the owner", ownerDB, q, "credit_grants is append-only")
	}
	// Finance reads everything and writes nothing.
	if n := count(t, financeDB, `SELECT (SELECT count(*) FROM credit_grants) + (SELECT count(*) FROM usage_events)
		+ (SELECT count(*) FROM recon_runs) + (SELECT count(*) FROM referral_acceptances)`); n < 390 {
		t.Errorf("finance reads %d rows, want the ledger and the usage", n)
	}
	for _, q := range []string{
		`INSERT INTO credit_grants (idempotency_key, program, account_id, beneficiary_id, amount_usd, granted_before_usd,
			spend_usd, earned_usd, as_of, run_id) VALUES ('k', 'referral', 'a', 'a', 1, 0, 0, 0, now(), 1)`,
		`UPDATE recon_runs SET status = 'failed'`,
		`INSERT INTO referral_acceptances (referrer_id, accepted_by) VALUES ('ref_cat', 'finance')`,
		`DELETE FROM usage_events`,
	} {
		denied("finance", financeDB, q, "permission denied")
	}
	if got := readGrants(t, admin); diffGrants(got, fixtureGrants) != "" {
		t.Errorf("grants after the attempts:\n%s", diffGrants(got, fixtureGrants))
	}

	// verify under the job's login finds a run left running by a dead runner, and exits 1.
	pgtest.Exec(t, admin, `INSERT INTO recon_runs (kind, as_of, status, parameters, backend_pid) VALUES ('run', '2026-03-01', 'running', '{}', 0)`)
	code, stdout, stderr := runInProc(context.Background(), append([]string{"verify"}, job...)...)
	if code != exitcode.Failed || !regexp.MustCompile(`(?m)^running +FAIL +1 +1 `).MatchString(stdout) ||
		!strings.Contains(stdout, "FAIL running: run ") || !strings.Contains(stderr, "failed checks: running: 1 failing, first: run ") {
		t.Errorf("verify with a run left running: exit %d, want 1 naming the run\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}

// TestDatabaseURLDefaultsToVerifiedTLS: a DATABASE_URL without sslmode gets verify-full (the
// driver's own default, require, does not check the certificate); an explicit sslmode is kept;
// an unknown one is a usage error naming database-url that does not show the password.
func TestDatabaseURLDefaultsToVerifiedTLS(t *testing.T) {
	tests := []struct {
		name, url, pgsslmode, want string
	}{
		{"no query", "postgres://app:pw@db.internal:5432/billing", "", "postgres://app:pw@db.internal:5432/billing?sslmode=verify-full"},
		{"other parameters", "postgresql://app@db/billing?connect_timeout=5", "", "postgresql://app@db/billing?connect_timeout=5&sslmode=verify-full"},
		{"loopback too", "postgres://app@127.0.0.1/billing", "", "postgres://app@127.0.0.1/billing?sslmode=verify-full"},
		{"escaped password kept", "postgres://app:p%40ss%2Fw%3Ard@db/billing", "", "postgres://app:p%40ss%2Fw%3Ard@db/billing?sslmode=verify-full"},
		{"disable kept", "postgres://app@localhost/billing?sslmode=disable", "", "postgres://app@localhost/billing?sslmode=disable"},
		{"require kept", "postgres://app@db/billing?sslmode=require", "", "postgres://app@db/billing?sslmode=require"},
		{"verify-ca kept", "postgres://app@db/billing?sslmode=verify-ca&sslrootcert=/etc/ca.pem", "", "postgres://app@db/billing?sslmode=verify-ca&sslrootcert=/etc/ca.pem"},
		{"PGSSLMODE respected", "postgres://app@db/billing", "require", "postgres://app@db/billing"},
		{"socket", "postgres:///billing?host=/var/run/postgresql", "", "postgres:///billing?host=/var/run/postgresql&sslmode=verify-full"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setPGSSLMode(t, tt.pgsslmode)
			c := common{databaseURL: tt.url, logFormat: "json", timezone: "UTC"}
			if _, err := c.validate(); err != nil {
				t.Fatalf("validate(%q): %v", tt.url, err)
			}
			if c.databaseURL != tt.want {
				t.Errorf("validate(%q): URL %q, want %q", tt.url, c.databaseURL, tt.want)
			}
		})
	}
	for _, mode := range []string{"bogus", "verify_full", "VERIFY-FULL", "pqgo-none"} {
		t.Run("rejects "+mode, func(t *testing.T) {
			setPGSSLMode(t, "")
			c := common{databaseURL: "postgres://app:s3cr3t-PW-tls@db/billing?sslmode=" + mode, logFormat: "json", timezone: "UTC"}
			_, err := c.validate()
			var ue *usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), "database-url:") || !strings.Contains(err.Error(), "sslmode") {
				t.Fatalf("sslmode=%s: error %v, want a usage error naming database-url and sslmode", mode, err)
			}
			if strings.Contains(err.Error(), "s3cr3t-PW-tls") {
				t.Errorf("sslmode=%s: error %q shows the password", mode, err)
			}
		})
	}
}

// setPGSSLMode sets PGSSLMODE for the test, or unsets it when mode is empty (the driver refuses
// an empty one).
func setPGSSLMode(t *testing.T, mode string) {
	t.Helper()
	t.Setenv("PGSSLMODE", mode) // restores the original value when the test ends
	if mode == "" {
		os.Unsetenv("PGSSLMODE")
	}
}

// signaturePattern finds presigned URL signatures.
var signaturePattern = regexp.MustCompile(`X-Amz-Signature=([0-9a-fA-F]+)`)

// TestSecretsNeverLeak runs every command in process with a password in DATABASE_URL and
// distinctive AWS keys, reports in an S3 server, then greps everything the program wrote: stdout
// and stderr of each command, every column of the job-owned tables, every report object. Only
// `reports` may print presigned links (that is what it is for), and their signatures must appear
// nowhere else.
func TestSecretsNeverLeak(t *testing.T) {
	clearSettingsEnv(t)
	admin, dsn := pgtest.Open(t)
	password := "s3cr3t-PW-" + randomHex(6)
	login := newLogin(t, admin, "cr_secret", "SUPERUSER PASSWORD '"+password+"'")
	dbURL := loginURL(t, dsn, login, password)
	s3 := s3test.New(t, "finance")
	s3.SetEnv(t)
	awsSecret := "AWSs3cr3t" + randomHex(12)
	t.Setenv("AWS_SECRET_ACCESS_KEY", awsSecret)
	// The draw secret of the signup bonus, used: the terms draw for every recipient.
	drawSecret := "DRAWs3cr3t-" + randomHex(16)
	t.Setenv("CREDITRECON_DRAW_SECRET", drawSecret)
	termsFile := filepath.Join(t.TempDir(), "terms.yaml")
	seed, err := os.ReadFile("../../terms/seed.yaml")
	if err != nil {
		t.Fatal(err)
	}
	signup := `  signup_bonus:
    - id: bonus
      min_load_usd: "10.00"
      fixed_usd: "5.00"
      fixed_countries: []
      unknown_country: draw
      draw: [{usd: "5.00", weight: 3}, {usd: "10.00", weight: 1}]
`
	if err := os.WriteFile(termsFile, append(seed, signup...), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CREDITRECON_TERMS", termsFile)
	t.Setenv("DATABASE_URL", dbURL)
	t.Setenv("REPORTS_URL", "s3://finance/creditrecon")
	setPGSSLMode(t, "")
	one := openDB(t, dsn)
	one.SetMaxOpenConns(1)
	pgtest.Exec(t, one, fixtureSQL)
	pgtest.Exec(t, one, `INSERT INTO credit_loads (id, user_id, amount_usd, loaded_at)
		SELECT 1, referred_user_id, 20, referred_at + interval '1 day' FROM referrals WHERE referred_user_id = 'dave'`)

	type output struct{ name, stdout, stderr string }
	var outputs []output
	run := func(wantCode int, args ...string) string {
		t.Helper()
		code, stdout, stderr := runInProc(context.Background(), args...)
		if code != wantCode {
			t.Errorf("creditrecon %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, wantCode, stdout, stderr)
		}
		outputs = append(outputs, output{strings.Join(args, " "), stdout, stderr})
		return stdout
	}
	run(exitcode.OK, "migrate")
	run(exitcode.OK, "accept", "ref_alice", "--by", "ops", "--note", "secret test")
	run(exitcode.OK, "run", "--as-of", cutoff, "--dry-run")
	run(exitcode.OK, "run", "--as-of", cutoff)
	run(exitcode.OK, "run", "--as-of", "2026-02-15", "--log-format", "text")
	run(exitcode.Failed, "run", "--as-of", "2026-03-02", "--max-anomaly-share", "0") // fails, and says why in the ledger
	run(exitcode.OK, "explain", "ref_alice", "--as-of", cutoff)
	run(exitcode.OK, "runs")
	run(exitcode.OK, "runs", "--json")
	run(exitcode.OK, "export", "--as-of", cutoff)
	run(exitcode.OK, "verify")
	links := run(exitcode.OK, "reports", "--as-of", cutoff)
	// Connection failures and bad URLs, each carrying the password.
	closed := closedPort(t)
	run(exitcode.Failed, "run", "--as-of", cutoff, "--database-url",
		fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/db?sslmode=disable&connect_timeout=5", login, password, closed))
	run(exitcode.Failed, "runs", "--database-url",
		fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/db?sslmode=disable", login, password, closed))
	run(exitcode.Usage, "runs", "--database-url", "postgres://"+login+":"+password+"@127.0.0.1:notaport/db")
	run(exitcode.Usage, "runs", "--database-url", "postgres://"+login+":"+password+"%zz@127.0.0.1/db")
	run(exitcode.Usage, "runs", "--database-url", "postgres://"+login+":"+password+"@127.0.0.1/db?sslmode=nope")
	// The password as a query parameter: working, refused, and malformed.
	inQuery, _ := url.Parse(loginURL(t, dsn, login, ""))
	inQuery.RawQuery += "&password=" + password
	run(exitcode.OK, "runs", "--database-url", inQuery.String())
	run(exitcode.Failed, "runs", "--database-url", fmt.Sprintf("postgres://%s@127.0.0.1:%d/db?password=%s&sslmode=disable", login, closed, password))
	run(exitcode.Usage, "runs", "--database-url", fmt.Sprintf("postgres://%s@127.0.0.1/db?password=%s&connect_timeout=x", login, password))
	noDB, _ := url.Parse(dbURL)
	noDB.Path = "/no_such_db"
	run(exitcode.Failed, "migrate", "--database-url", noDB.String())

	signatures := signaturePattern.FindAllStringSubmatch(links, -1)
	if len(signatures) < 6 {
		t.Fatalf("reports printed %d presigned links, want one per file and the manifest:\n%s", len(signatures), links)
	}
	if n := count(t, one, `SELECT count(*) FROM credit_grants WHERE bonus_kind = 'draw'`); n != 2 {
		t.Errorf("%d drawn bonuses, want 2: the draw secret must be used for this test to mean anything", n)
	}
	secrets := map[string]string{"the database password": password, "the AWS secret key": awsSecret, "the draw secret": drawSecret}
	for i, m := range signatures {
		secrets[fmt.Sprintf("presigned signature %d", i)] = m[1]
	}
	check := func(where, text string) {
		t.Helper()
		for what, secret := range secrets {
			if strings.Contains(text, secret) {
				t.Errorf("%s shows %s", where, what)
			}
		}
	}
	for _, o := range outputs {
		check("stderr of `"+o.name+"`", o.stderr)
		if strings.Contains(o.stderr, "X-Amz-Signature") {
			t.Errorf("stderr of `%s` shows a presigned link", o.name)
		}
		if strings.HasPrefix(o.name, "reports") {
			continue
		}
		check("stdout of `"+o.name+"`", o.stdout)
		if strings.Contains(o.stdout, "X-Amz-Signature") {
			t.Errorf("stdout of `%s` shows a presigned link", o.name)
		}
	}

	// Every column of every job-owned table.
	var tables []string
	if err := admin.Select(&tables, `SELECT tablename FROM pg_tables WHERE schemaname = current_schema()
		AND tablename NOT IN ('users', 'referrals', 'templates', 'usage_events') ORDER BY 1`); err != nil {
		t.Fatal(err)
	}
	var failed string
	for _, table := range tables {
		var rows string
		if err := admin.Get(&rows, `SELECT coalesce(string_agg(t::text, E'\n'), '') FROM `+table+` t`); err != nil {
			t.Fatal(err)
		}
		check("table "+table, rows)
		if table == "recon_runs" {
			failed = rows
		}
	}
	if !strings.Contains(failed, "anomalies") {
		t.Errorf("recon_runs records no failed run's error; the test needs one:\n%s", failed)
	}

	// Every report object, the manifests included.
	sink, err := reports.OpenSink(context.Background(), "s3://finance/creditrecon", reports.SinkOptions{ForcePathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	objects, err := sink.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	manifests := 0
	for _, o := range objects {
		rc, err := sink.Open(context.Background(), o.Key)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		check("report "+o.Key, string(b))
		if strings.Contains(string(b), "X-Amz-") {
			t.Errorf("report %s holds a presigned link", o.Key)
		}
		if strings.HasSuffix(o.Key, "manifest.json") {
			manifests++
		}
	}
	if manifests < 2 {
		t.Errorf("%d manifests in S3, want 2 (the test's two cutoffs): %v", manifests, objects)
	}
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}
