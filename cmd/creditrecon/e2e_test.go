package main

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/shopspring/decimal"

	"github.com/runpod/creditrecon/internal/exitcode"
)

// What one run of the small fixture as of cutoff grants (see fixtureSQL), per account.
var (
	fixtureGrants = grantState{Count: 4, Total: "1071.12", Sums: map[string]string{
		"referral/ref_alice/":               "52.98",
		"template/tpl_llm/":                 "18.14",
		"serverless_referral/dave/referrer": "500.00",
		"serverless_referral/dave/referred": "500.00",
	}}
	fixtureKeys = []string{
		"referral:ref_alice:0.00",
		"serverless_referral:dave/referred:0.00",
		"serverless_referral:dave/referrer:0.00",
		"template:tpl_llm:0.00",
	}
)

// keyPattern finds idempotency keys in a command's output.
var keyPattern = regexp.MustCompile(`\b(?:referral|template|serverless_referral):[^\s|:]+:-?\d+\.\d{2}\b`)

func keysIn(out string) []string {
	keys := keyPattern.FindAllString(out, -1)
	slices.Sort(keys)
	return slices.Compact(keys)
}

func grantKeys(t testing.TB, db *sqlx.DB) []string {
	t.Helper()
	var keys []string
	if err := db.Select(&keys, `SELECT idempotency_key FROM credit_grants ORDER BY idempotency_key COLLATE "C"`); err != nil {
		t.Fatal(err)
	}
	return keys
}

// written counts the rows the job writes: runs, grants and acceptances.
func written(t testing.TB, db *sqlx.DB) [3]int {
	t.Helper()
	return [3]int{count(t, db, "SELECT count(*) FROM recon_runs"), count(t, db, "SELECT count(*) FROM credit_grants"),
		count(t, db, "SELECT count(*) FROM referral_acceptances")}
}

func TestRunGrantsTheFixture(t *testing.T) {
	db, dsn := newFixture(t)
	code, stdout, stderr := runProc(t, dbEnv(t, dsn), "run", "--as-of", cutoff)
	if code != exitcode.OK {
		t.Fatalf("run: exit %d, want 0\nstderr:\n%s", code, stderr)
	}
	if got := readGrants(t, db); diffGrants(got, fixtureGrants) != "" || got.Count != fixtureGrants.Count {
		t.Fatalf("grants: %d, want %d\n%s", got.Count, fixtureGrants.Count, diffGrants(got, fixtureGrants))
	}
	if got := grantKeys(t, db); !slices.Equal(got, fixtureKeys) {
		t.Errorf("idempotency keys: got %q, want %q", got, fixtureKeys)
	}
	if !strings.Contains(stdout, "4 grants, 1071.12 USD") {
		t.Errorf("run summary on stdout: want %q in\n%s", "4 grants, 1071.12 USD", stdout)
	}
	if !strings.Contains(stdout, "usage rows considered: 390, anomalies excluded: 1") {
		t.Errorf("run summary: want 390 rows considered and 1 anomaly in\n%s", stdout)
	}
	checkLedger(t, db)

	// The same cutoff again, and an older one after it, write nothing.
	for _, asOf := range []string{cutoff, "2026-02-01"} {
		code, stdout, stderr = runProc(t, dbEnv(t, dsn), "run", "--as-of", asOf)
		if code != exitcode.OK {
			t.Fatalf("run --as-of %s again: exit %d\nstderr:\n%s", asOf, code, stderr)
		}
		if !strings.Contains(stdout, ": 0 grants, 0.00 USD") {
			t.Errorf("run --as-of %s again: want 0 grants, got\n%s", asOf, stdout)
		}
	}
	if got := readGrants(t, db); got.Count != 4 {
		t.Errorf("grants after re-runs: got %d, want 4", got.Count)
	}
	if got := runStatuses(t, db); len(got) != 3 || got[1] != "succeeded" || got[2] != "succeeded" || got[3] != "succeeded" {
		t.Errorf("run ledger: got %v, want 3 succeeded runs", got)
	}
}

func TestBadUsage(t *testing.T) {
	db, dsn := newFixture(t)
	before := written(t, db)
	tests := []struct {
		name  string
		env   []string // besides DATABASE_URL
		noDB  bool     // no DATABASE_URL at all
		args  []string
		inErr []string // stderr must name these
	}{
		{name: "unknown command", args: []string{"frobnicate"}, inErr: []string{`unknown command "frobnicate"`}},
		{name: "no command", args: nil, inErr: []string{"no command given"}},
		{name: "month 13", args: []string{"run", "--as-of", "2026-13-01"}, inErr: []string{"as-of:", "2026-13-01"}},
		{name: "cutoff in the future", args: []string{"run", "--as-of", "2999-01-01"}, inErr: []string{"as-of:", "in the future"}},
		{name: "rate from env not a number", env: []string{"CREDITRECON_REFERRAL_RATE=abc"}, args: []string{"run", "--as-of", cutoff},
			inErr: []string{"CREDITRECON_REFERRAL_RATE", `"abc"`}},
		{name: "rate above 1", args: []string{"run", "--as-of", cutoff, "--referral-rate", "2"}, inErr: []string{"referral-rate:", "between 0 and 1"}},
		{name: "rate flag not a number", args: []string{"run", "--referral-rate", "two"}, inErr: []string{"referral-rate", "two"}},
		{name: "unknown zone", args: []string{"run", "--as-of", cutoff, "--timezone", "Mars/Olympus"}, inErr: []string{"timezone:", "Mars/Olympus"}},
		{name: "no database url", noDB: true, args: []string{"run", "--as-of", cutoff}, inErr: []string{"database-url:", "DATABASE_URL"}},
		{name: "accept without by", args: []string{"accept", "ref_cat"}, inErr: []string{"by: required"}},
		{name: "accept without referrer", args: []string{"accept", "--by", "ops"}, inErr: []string{"REFERRER_ID"}},
		{name: "anomaly share above 1", args: []string{"run", "--as-of", cutoff, "--max-anomaly-share", "5"}, inErr: []string{"max-anomaly-share:", "between 0 and 1"}},
		{name: "unknown flag", args: []string{"run", "--as-off", cutoff}, inErr: []string{"as-off"}},
		{name: "unknown program", env: []string{"CREDITRECON_PROGRAMS=referral,cashback"}, args: []string{"run", "--as-of", cutoff},
			inErr: []string{"CREDITRECON_PROGRAMS", "cashback"}},
		{name: "explain bad cutoff", args: []string{"explain", "ref_alice", "--as-of", "yesterday"}, inErr: []string{"as-of:", "yesterday"}},
		{name: "reports url not supported", env: []string{"REPORTS_URL=ftp://reports.example.com/x"}, args: []string{"run", "--as-of", cutoff},
			inErr: []string{"REPORTS_URL", "ftp://reports.example.com/x"}},
		{name: "runs bad limit", args: []string{"runs", "--limit", "0"}, inErr: []string{"limit:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := tt.env
			if !tt.noDB {
				env = append(dbEnv(t, dsn), env...)
			}
			code, _, stderr := runProc(t, env, tt.args...)
			if code != exitcode.Usage {
				t.Errorf("exit code: got %d, want %d (usage)\nstderr:\n%s", code, exitcode.Usage, stderr)
			}
			for _, want := range tt.inErr {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr does not name %q:\n%s", want, stderr)
				}
			}
			if got := written(t, db); got != before {
				t.Errorf("rows written (runs, grants, acceptances): got %v, want %v", got, before)
			}
		})
	}
}

// A run that fails (here: too many anomalies) exits 1, says why, and writes no grant; its ledger
// row says failed. This goes through main() itself, so it also checks main's mapping of errors.
func TestFailedRunExits1(t *testing.T) {
	db, dsn := newFixture(t)
	code, _, stderr := runProc(t, dbEnv(t, dsn), "run", "--as-of", cutoff, "--max-anomaly-share", "0")
	if code != exitcode.Failed {
		t.Errorf("exit code: got %d, want %d (failed)\nstderr:\n%s", code, exitcode.Failed, stderr)
	}
	if !strings.Contains(stderr, "max-anomaly-share") || strings.Contains(stderr, "interrupted") {
		t.Errorf("stderr: want the anomaly limit named, and no mention of an interruption:\n%s", stderr)
	}
	if n := count(t, db, "SELECT count(*) FROM credit_grants"); n != 0 {
		t.Errorf("grants: got %d, want 0", n)
	}
	if got := runStatuses(t, db); len(got) != 1 || got[1] != "failed" {
		t.Errorf("run ledger: got %v, want one failed run", got)
	}
}

func TestLockHeld(t *testing.T) {
	db, dsn := newFixture(t)
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(hashtext('creditrecon.run'))"); err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr := runProc(t, dbEnv(t, dsn), "run", "--as-of", cutoff)
	if code != exitcode.Locked {
		t.Errorf("run while locked: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitcode.Locked, stdout, stderr)
	}
	if !strings.Contains(stderr, "another run") || !strings.Contains(stderr, "in progress") {
		t.Errorf("run while locked: stderr does not say another run is in progress:\n%s", stderr)
	}
	if got := written(t, db); got != [3]int{0, 0, 2} {
		t.Errorf("rows written (runs, grants, acceptances) while locked: got %v, want [0 0 2]", got)
	}

	// A dry run takes no lock.
	code, stdout, stderr = runProc(t, dbEnv(t, dsn), "run", "--as-of", cutoff, "--dry-run")
	if code != exitcode.OK {
		t.Fatalf("dry run while locked: exit %d, want 0\nstderr:\n%s", code, stderr)
	}
	if got := keysIn(stdout); !slices.Equal(got, fixtureKeys) {
		t.Errorf("dry run while locked: keys %q, want %q\n%s", got, fixtureKeys, stdout)
	}

	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_unlock(hashtext('creditrecon.run'))"); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr = runProc(t, dbEnv(t, dsn), "run", "--as-of", cutoff); code != exitcode.OK {
		t.Fatalf("run after unlock: exit %d\nstderr:\n%s", code, stderr)
	}
	if got := readGrants(t, db); got.Count != 4 {
		t.Errorf("grants after unlock: got %d, want 4", got.Count)
	}
}

// TestRunQueryPlans: run --query-plans prints each pass over usage with its plan, and plans what
// the same run without it does.
func TestRunQueryPlans(t *testing.T) {
	db, dsn := newFixture(t)
	code, stdout, stderr := runProc(t, dbEnv(t, dsn), "run", "--as-of", cutoff, "--dry-run", "--full", "--query-plans")
	if code != exitcode.OK {
		t.Fatalf("dry run --query-plans: exit %d\nstderr:\n%s", code, stderr)
	}
	if got := keysIn(stdout); !slices.Equal(got, fixtureKeys) {
		t.Errorf("dry run --query-plans keys: got %q, want %q", got, fixtureKeys)
	}
	for _, table := range []string{"run_anomalies", "run_referrals", "run_templates"} {
		pass := regexp.MustCompile(`(?s)-- into ` + table + `(, \w+)*, with .*?\n\n.*?Execution Time: [0-9.]+ ms`)
		if !pass.MatchString(stderr) {
			t.Errorf("--query-plans shows no plan of the pass into %s:\n%s", table, stderr)
		}
	}
	if got := written(t, db); got != [3]int{0, 0, 2} {
		t.Errorf("rows written (runs, grants, acceptances) by a dry run with --query-plans: got %v, want [0 0 2]", got)
	}
}

func TestDryRun(t *testing.T) {
	db, dsn := newFixture(t)
	code, stdout, stderr := runProc(t, dbEnv(t, dsn), "run", "--as-of", cutoff, "--dry-run")
	if code != exitcode.OK {
		t.Fatalf("dry run: exit %d\nstderr:\n%s", code, stderr)
	}
	dryKeys := keysIn(stdout)
	if !slices.Equal(dryKeys, fixtureKeys) {
		t.Errorf("dry run keys: got %q, want %q\n%s", dryKeys, fixtureKeys, stdout)
	}
	for _, want := range []string{"DRY RUN", "nothing written", "52.98", "18.14", "500.00"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, stdout)
		}
	}
	if got := written(t, db); got != [3]int{0, 0, 2} {
		t.Errorf("rows written (runs, grants, acceptances) by a dry run: got %v, want [0 0 2]", got)
	}

	// The run writes exactly what the dry run showed; a dry run after it shows nothing to grant.
	if code, _, stderr = runProc(t, dbEnv(t, dsn), "run", "--as-of", cutoff); code != exitcode.OK {
		t.Fatalf("run: exit %d\nstderr:\n%s", code, stderr)
	}
	if got := grantKeys(t, db); !slices.Equal(got, dryKeys) {
		t.Errorf("run wrote keys %q, the dry run showed %q", got, dryKeys)
	}
	code, stdout, stderr = runProc(t, dbEnv(t, dsn), "run", "--as-of", cutoff, "--dry-run")
	if code != exitcode.OK {
		t.Fatalf("second dry run: exit %d\nstderr:\n%s", code, stderr)
	}
	if got := keysIn(stdout); len(got) != 0 {
		t.Errorf("dry run after the run: keys %q, want none", got)
	}
	if got := written(t, db); got != [3]int{1, 4, 2} {
		t.Errorf("rows (runs, grants, acceptances) after the dry run: got %v, want [1 4 2]", got)
	}
}

// explainRow is one account line of `creditrecon explain`.
type explainRow struct {
	program, account, status, why string
	spend, earned                 decimal.Decimal
	eligible                      bool
	target, granted, owed         decimal.Decimal
}

func parseExplain(t testing.TB, out string) map[string]explainRow {
	t.Helper()
	rows := map[string]explainRow{}
	inTable := false
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) > 0 && f[0] == "PROGRAM":
			inTable = true
			continue
		case len(f) == 0:
			inTable = false
		}
		if !inTable {
			continue
		}
		r := explainRow{program: f[0], account: f[1]}
		i := 2
		if strings.HasPrefix(f[2], "(") { // "dave (referrer bonus)"
			r.account += " " + f[2] + " " + f[3]
			i = 4
		}
		if len(f) < i+8 {
			t.Fatalf("explain line %q: too few columns", line)
		}
		var err error
		dec := func(s string) decimal.Decimal {
			d, e := decimal.NewFromString(s)
			if e != nil {
				err = e
			}
			return d
		}
		r.spend, r.earned = dec(f[i]), dec(f[i+1])
		r.eligible, _ = strconv.ParseBool(f[i+2])
		r.target, r.granted, r.owed = dec(f[i+3]), dec(f[i+4]), dec(f[i+5])
		r.status = f[i+7]
		r.why = strings.Join(f[i+8:], " ")
		if err != nil {
			t.Fatalf("explain line %q: %v", line, err)
		}
		rows[r.program+" "+r.account] = r
	}
	return rows
}

func TestExplain(t *testing.T) {
	_, dsn := newFixture(t)
	type want struct {
		spend, earned, target, granted, owed string
		eligible                             bool
		status, why                          string
	}
	explain := func(user string) (string, map[string]explainRow) {
		t.Helper()
		code, stdout, stderr := runProc(t, dbEnv(t, dsn), "explain", user, "--as-of", cutoff)
		if code != exitcode.OK {
			t.Fatalf("explain %s: exit %d\nstderr:\n%s", user, code, stderr)
		}
		for _, s := range []string{"terms (", "from 25 referrals and 500.00 USD of referral spend", "from 86400 runtime seconds",
			"once serverless spend reaches 1000.00 USD"} {
			if !strings.Contains(stdout, s) {
				t.Errorf("explain %s: no %q in\n%s", user, s, stdout)
			}
		}
		return stdout, parseExplain(t, stdout)
	}
	check := func(user string, rows map[string]explainRow, account string, w want) {
		t.Helper()
		r, ok := rows[account]
		if !ok {
			t.Errorf("explain %s: no line for %q; lines: %v", user, account, slices.Collect(maps.Keys(rows)))
			return
		}
		for _, c := range []struct{ name, got, want string }{
			{"spend", r.spend.String(), w.spend}, {"earned", r.earned.String(), w.earned},
			{"target", r.target.StringFixed(2), w.target}, {"granted", r.granted.StringFixed(2), w.granted},
			{"owed", r.owed.StringFixed(2), w.owed}, {"status", r.status, w.status},
			{"eligible", strconv.FormatBool(r.eligible), strconv.FormatBool(w.eligible)},
		} {
			if c.got != c.want {
				t.Errorf("explain %s, %s: %s got %s, want %s", user, account, c.name, c.got, c.want)
			}
		}
		if !strings.Contains(r.why, w.why) {
			t.Errorf("explain %s, %s: why %q, want it to contain %q", user, account, r.why, w.why)
		}
	}

	// Before any run: everything eligible is owed.
	out, rows := explain("ref_alice")
	check("ref_alice", rows, "referral ref_alice", want{"2649.492", "52.98984", "52.98", "0.00", "52.98", true, "granted", ""})
	check("ref_alice", rows, "serverless_referral dave (referrer bonus)", want{"1000.005", "500", "500.00", "0.00", "500.00", true, "granted", ""})
	check("ref_alice", rows, "serverless_referral erin (referrer bonus)", want{"999.99", "0", "0.00", "0.00", "0.00", false, "pending", "999.99, needs 1000.00"})
	if !strings.Contains(out, "grants written to ref_alice: 0") {
		t.Errorf("explain ref_alice before the run: want no grants written:\n%s", out)
	}

	if code, _, stderr := runProc(t, dbEnv(t, dsn), "run", "--as-of", cutoff); code != exitcode.OK {
		t.Fatalf("run: exit %d\nstderr:\n%s", code, stderr)
	}

	out, rows = explain("ref_alice")
	check("ref_alice", rows, "referral ref_alice", want{"2649.492", "52.98984", "52.98", "52.98", "0.00", true, "granted", ""})
	check("ref_alice", rows, "serverless_referral dave (referrer bonus)", want{"1000.005", "500", "500.00", "500.00", "0.00", true, "granted", ""})
	if got, want := keysIn(out), []string{"referral:ref_alice:0.00", "serverless_referral:dave/referrer:0.00"}; !slices.Equal(got, want) {
		t.Errorf("explain ref_alice: grant keys %q, want %q\n%s", got, want, out)
	}
	if !strings.Contains(out, "grants written to ref_alice: 2") || !strings.Contains(out, "anomalies as of the cutoff (all users): 1") {
		t.Errorf("explain ref_alice: want 2 grants written and 1 anomaly:\n%s", out)
	}

	// The seed's $40.00: accrued, not granted, 20 < 25 referrals.
	_, rows = explain("ref_bob")
	check("ref_bob", rows, "referral ref_bob", want{"2000", "40", "0.00", "0.00", "0.00", false, "accrued", "20 referrals, needs 25"})
	_, rows = explain("ref_cat")
	check("ref_cat", rows, "referral ref_cat", want{"650", "13", "0.00", "0.00", "0.00", false, "accrued", "not accepted"})

	// The seed's $18.14, with $0.004 carried.
	out, rows = explain("carol")
	check("carol", rows, "template tpl_llm", want{"1814.4", "18.144", "18.14", "18.14", "0.00", true, "granted", ""})
	check("carol", rows, "template tpl_tiny", want{"2", "0.02", "0.00", "0.00", "0.00", false, "accrued", "3600 runtime seconds, needs 86400"})
	if got, want := keysIn(out), []string{"template:tpl_llm:0.00"}; !slices.Equal(got, want) {
		t.Errorf("explain carol: grant keys %q, want %q\n%s", got, want, out)
	}

	// The referred user's side of the serverless bonus.
	out, rows = explain("dave")
	check("dave", rows, "serverless_referral dave (referred bonus)", want{"1000.005", "500", "500.00", "500.00", "0.00", true, "granted", ""})
	if len(rows) != 1 {
		t.Errorf("explain dave: %d account lines, want 1 (the referred bonus):\n%s", len(rows), out)
	}
	if got, want := keysIn(out), []string{"serverless_referral:dave/referred:0.00"}; !slices.Equal(got, want) {
		t.Errorf("explain dave: grant keys %q, want %q\n%s", got, want, out)
	}

	out, rows = explain("nobody")
	if len(rows) != 0 || !strings.Contains(out, "no account pays this user") {
		t.Errorf("explain nobody: want no account:\n%s", out)
	}
}

func TestRunsNewestFirst(t *testing.T) {
	db, dsn := newFixture(t)
	for _, args := range [][]string{
		{"run", "--as-of", "2026-01-09"},
		{"run", "--as-of", cutoff},
		{"run", "--as-of", cutoff, "--dry-run"}, // no ledger row
		{"run", "--as-of", "2026-02-01"},
	} {
		if code, _, stderr := runProc(t, dbEnv(t, dsn), args...); code != exitcode.OK {
			t.Fatalf("%v: exit %d\nstderr:\n%s", args, code, stderr)
		}
	}
	code, stdout, stderr := runProc(t, dbEnv(t, dsn), "runs")
	if code != exitcode.OK {
		t.Fatalf("runs: exit %d\nstderr:\n%s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "ID") {
		t.Fatalf("runs: want a header and 3 runs, got\n%s", stdout)
	}
	for i, want := range []struct{ id, asOf string }{{"3", "2026-02-01T00:00:00Z"}, {"2", "2026-03-01T00:00:00Z"}, {"1", "2026-01-09T00:00:00Z"}} {
		f := strings.Fields(lines[i+1])
		if f[0] != want.id || f[2] != "-" || f[3] != want.asOf || f[4] != "succeeded" {
			t.Errorf("runs line %d: got %q, want unsharded run %s as of %s, succeeded", i+1, lines[i+1], want.id, want.asOf)
		}
	}

	code, stdout, stderr = runProc(t, dbEnv(t, dsn), "runs", "--json", "--limit", "2")
	if code != exitcode.OK {
		t.Fatalf("runs --json: exit %d\nstderr:\n%s", code, stderr)
	}
	var ids []int64
	dec := json.NewDecoder(strings.NewReader(stdout))
	for dec.More() {
		var r struct{ ID int64 }
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("runs --json: %v\n%s", err, stdout)
		}
		ids = append(ids, r.ID)
	}
	if !slices.Equal(ids, []int64{3, 2}) {
		t.Errorf("runs --json --limit 2: ids %v, want [3 2]", ids)
	}
	// 2026-01-09 granted part (13.19 referral, 2.59 template), 2026-03-01 the rest, 2026-02-01
	// nothing: the sums are one run's.
	if got := readGrants(t, db); diffGrants(got, fixtureGrants) != "" || got.Count != 6 {
		t.Errorf("grants after runs at three cutoffs: %d, want 6\n%s", got.Count, diffGrants(got, fixtureGrants))
	}
}

// TestShardedNight runs the fixture's night as two shard processes at once, as an Indexed Job
// does: together they write the grants and keys of one unsharded run, the last one out writes
// one set of reports with one manifest naming both runs, a shard run again writes nothing, and
// a held shard exits 3.
func TestShardedNight(t *testing.T) {
	db, dsn := newFixture(t)
	env := dbEnv(t, dsn)
	dir := strings.TrimPrefix(env[1], "REPORTS_URL=file://")
	procs := []*proc{startProc(t, env, "run", "--as-of", cutoff, "--shard", "0/2"), startProc(t, env, "run", "--as-of", cutoff, "--shard", "1/2")}
	for i, p := range procs {
		if code := p.wait(t); code != exitcode.OK {
			t.Fatalf("shard %d/2: exit %d\nstderr:\n%s", i, code, p.stderr.String())
		}
	}
	if got := readGrants(t, db); diffGrants(got, fixtureGrants) != "" || got.Count != fixtureGrants.Count {
		t.Fatalf("grants of both shards: %d, want %d\n%s", got.Count, fixtureGrants.Count, diffGrants(got, fixtureGrants))
	}
	if got := grantKeys(t, db); !slices.Equal(got, fixtureKeys) {
		t.Errorf("idempotency keys: got %q, want %q", got, fixtureKeys)
	}
	checkLedger(t, db)
	body, err := os.ReadFile(filepath.Join(dir, "dt=2026-02-28", "manifest.json"))
	if err != nil {
		t.Fatalf("no merged manifest after both shards: %v", err)
	}
	var man struct {
		ShardRunIDs []int64 `json:"shard_run_ids"`
	}
	if err := json.Unmarshal(body, &man); err != nil || len(man.ShardRunIDs) != 2 {
		t.Errorf("manifest shard_run_ids %v (%v), want both shards' runs", man.ShardRunIDs, err)
	}

	code, stdout, stderr := runProc(t, env, "run", "--as-of", cutoff, "--shard", "1/2")
	if code != exitcode.OK || !strings.Contains(stdout, "shard 1/2") || !strings.Contains(stdout, ": 0 grants, 0.00 USD") {
		t.Errorf("shard 1/2 again: exit %d, want 0 and 0 grants\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	code, stdout, _ = runProc(t, env, "runs")
	if code != exitcode.OK || strings.Count(stdout, " 1/2 ") != 2 || strings.Count(stdout, " 0/2 ") != 1 {
		t.Errorf("runs: want the shard of each run listed\n%s", stdout)
	}

	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(hashtext('creditrecon.run.shard.2'), 1)"); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runProc(t, env, "run", "--as-of", cutoff, "--shard", "1/2"); code != exitcode.Locked {
		t.Errorf("shard 1/2 while it is held: exit %d, want %d\nstderr:\n%s", code, exitcode.Locked, stderr)
	}
	if code, _, stderr := runProc(t, env, "run", "--as-of", cutoff, "--shard", "0/2"); code != exitcode.OK {
		t.Errorf("shard 0/2 while 1/2 is held: exit %d, want 0\nstderr:\n%s", code, stderr)
	}
}
