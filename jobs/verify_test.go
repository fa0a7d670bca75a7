package jobs_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runpod/creditrecon/jobs"
)

// verify runs Verify and fails the test on an error (not on a failing check).
func (f *fixture) verify(opts jobs.VerifyOptions) jobs.VerifyReport {
	f.t.Helper()
	rep, err := f.r.Verify(context.Background(), opts)
	if err != nil {
		f.t.Fatalf("verify: %v", err)
	}
	return rep
}

func checkNamed(t *testing.T, rep jobs.VerifyReport, name string) jobs.Check {
	t.Helper()
	for _, c := range rep.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %q in %+v", name, rep.Checks)
	return jobs.Check{}
}

// TestVerifyPassesAfterRuns: a ledger written only by runs, in any order, re-runs included,
// passes every check, and the checks did look at something.
func TestVerifyPassesAfterRuns(t *testing.T) {
	f := newFixture(t)
	withFileReports(t, f)
	history(f, rand.New(rand.NewPCG(5, 6)))
	f.referrals("sv", "v", 1, "2026-01-02")
	f.usage("v1", "serverless", "", "1000.00", 3600, "2026-01-06")
	for _, c := range []string{"2026-01-15", "2026-01-10", "2026-01-25", "2026-01-25", "2026-02-01"} {
		f.run(c)
	}
	// A late row and a refund after the last run: earnings move, nothing granted exceeds a target.
	f.usage("v1", "serverless", "", "-900.00", 0, "2026-01-20")
	f.run("2026-02-02")

	rep := f.verify(jobs.VerifyOptions{})
	if err := rep.Err(); err != nil {
		t.Fatalf("a clean ledger fails verify: %v", err)
	}
	wantChecked := map[string]bool{"keys": true, "chain": true, "amounts": true, "grant_runs": true,
		"run_totals": true, "serverless_once": true, "owed": true, "manifests": true}
	for _, c := range rep.Checks {
		if c.Status() != "PASS" {
			t.Errorf("check %s: %s, want PASS", c.Name, c.Status())
		}
		if wantChecked[c.Name] && c.Checked == 0 {
			t.Errorf("check %s examined nothing", c.Name)
		}
		delete(wantChecked, c.Name)
	}
	for name := range wantChecked {
		t.Errorf("no check %s", name)
	}
	// --as-of limits the usage and report checks to one cutoff.
	one := f.verify(jobs.VerifyOptions{AsOf: date("2026-02-01")})
	if got, all := checkNamed(t, one, "manifests").Checked, checkNamed(t, rep, "manifests").Checked; got != 1 || all < 4 {
		t.Errorf("manifests checked: %d with --as-of, %d without; want 1 and at least 4", got, all)
	}
	if got, all := checkNamed(t, one, "owed").Checked, checkNamed(t, rep, "owed").Checked; got >= all {
		t.Errorf("owed checked %d accounts with --as-of, %d without; want fewer", got, all)
	}
}

// verifyBase is a small ledger: the seed's template (18.14 to maker) and a serverless referral
// (500.00 to sv and to v1), granted by one run as of 2026-02-01 with its reports in dir.
func verifyBase(t *testing.T) (*fixture, string) {
	f := newFixture(t)
	dir := withFileReports(t, f)
	f.users("maker")
	f.exec(`INSERT INTO templates VALUES ('tpl', 'maker', '2026-01-01')`)
	f.exec(`INSERT INTO users SELECT 't' || g, '2026-01-01' FROM generate_series(1, 20) g`)
	f.exec(`INSERT INTO usage_events (id, user_id, product, template_id, amount_usd, runtime_seconds, occurred_at)
		SELECT 1000 + g * 10 + d, 't' || g, 'pod', 'tpl', 0.54 * 24, 86400, timestamptz '2026-01-10' + d * interval '1 day'
		FROM generate_series(1, 20) g, generate_series(0, 6) d`)
	f.referrals("sv", "v", 1, "2026-01-02")
	f.usage("v1", "serverless", "", "1000.00", 3600, "2026-01-06")
	f.run("2026-02-01")
	if n := f.grantCount(); n != 3 {
		t.Fatalf("base ledger has %d grants, want 3", n)
	}
	return f, dir
}

// forge inserts a grant behind the job's back, as a superuser with the grant triggers off.
func (f *fixture) forge(key, program, account, role, beneficiary, amount, before string, runID string) {
	f.t.Helper()
	f.exec(`ALTER TABLE credit_grants DISABLE TRIGGER USER`)
	f.exec(`INSERT INTO credit_grants (idempotency_key, program, account_id, role, beneficiary_id, amount_usd,
		granted_before_usd, spend_usd, earned_usd, as_of, run_id)
		VALUES ($1, $2, $3, $4, $5, $6::numeric, $7::numeric, 0, 0, '2026-02-01', `+runID+`)`,
		key, program, account, role, beneficiary, amount, before)
	f.exec(`ALTER TABLE credit_grants ENABLE TRIGGER USER`)
}

const lastRun = `(SELECT max(id) FROM recon_runs)`

func TestVerifyFindsViolations(t *testing.T) {
	tests := []struct {
		name    string
		check   string // the check that must fail
		example string // in its examples
		forge   func(f *fixture, dir string)
	}{
		{"over-grant", "owed", "template:tpl: granted 28.14 > target 18.14", func(f *fixture, _ string) {
			f.forge("template:tpl:18.14", "template", "tpl", "", "maker", "10.00", "18.14", lastRun)
		}},
		{"broken chain", "chain", "says 5.00 granted before, its earlier grants sum to 18.14", func(f *fixture, _ string) {
			f.forge("template:tpl:5.00", "template", "tpl", "", "maker", "0.01", "5.00", lastRun)
		}},
		{"key naming another state", "keys", "does not name its program", func(f *fixture, _ string) {
			f.forge("template:tpl:0.00#2", "template", "tpl", "", "maker", "0.01", "18.14", lastRun)
		}},
		{"negative grant", "amounts", "of -1.00", func(f *fixture, _ string) {
			f.exec(`ALTER TABLE credit_grants DROP CONSTRAINT credit_grants_amount_usd_check`)
			f.forge("template:tpl:18.14", "template", "tpl", "", "maker", "-1.00", "18.14", lastRun)
		}},
		{"grant of an uncommitted run", "grant_runs", "which never committed its grants", func(f *fixture, _ string) {
			f.exec(`INSERT INTO recon_runs (kind, as_of, status, parameters) VALUES ('run', '2026-02-01', 'failed', '{}')`)
			f.forge("template:tpl:18.14", "template", "tpl", "", "maker", "0.01", "18.14", lastRun)
		}},
		{"account total edited", "account_totals", "template:tpl: ledger 1 grants, 18.14 USD to maker; credit_accounts 1 grants, 19.14 USD", func(f *fixture, _ string) {
			f.exec(`UPDATE credit_accounts SET granted_usd = granted_usd + 1 WHERE program = 'template' AND account_id = 'tpl'`)
		}},
		{"run counts off", "run_totals", "says 4 grants", func(f *fixture, _ string) {
			f.exec(`UPDATE recon_runs SET grants_written = grants_written + 1`)
		}},
		{"second serverless bonus", "serverless_once", "bonus of referral v1 2 times", func(f *fixture, _ string) {
			f.forge("serverless_referral:v1/referred:500.00", "serverless_referral", "v1", "referred", "v1", "500.00", "500.00", lastRun)
		}},
		{"grant of an unrecorded terms version", "terms_recorded", "name version ghost, which terms_versions does not record", func(f *fixture, _ string) {
			f.exec(`ALTER TABLE credit_grants DISABLE TRIGGER USER`)
			f.exec(`INSERT INTO credit_grants (idempotency_key, program, terms_id, account_id, role, beneficiary_id, amount_usd,
				granted_before_usd, spend_usd, earned_usd, as_of, run_id)
				VALUES ('template@ghost:tpl:0.00', 'template', 'ghost', 'tpl', '', 'maker', 1, 0, 0, 0, '2026-02-01', ` + lastRun + `)`)
			f.exec(`ALTER TABLE credit_grants ENABLE TRIGGER USER`)
		}},
		{"recorded terms edited", "terms_hashes", "template/seed recorded by run", func(f *fixture, _ string) {
			f.exec(`ALTER TABLE terms_versions DISABLE TRIGGER USER`)
			f.exec(`UPDATE terms_versions SET content = replace(content, '0.01', '0.05') WHERE program = 'template'`)
			f.exec(`ALTER TABLE terms_versions ENABLE TRIGGER USER`)
		}},
		{"run left running", "running", "is running but its session does not hold the run lock", func(f *fixture, _ string) {
			f.exec(`INSERT INTO recon_runs (kind, as_of, status, parameters, backend_pid) VALUES ('run', '2026-02-01', 'running', '{}', 0)`)
		}},
		{"manifest edited", "manifests", "does not tie out", func(f *fixture, dir string) {
			editManifest(t, dir, `"granted_as_of_usd": "18.14"`, `"granted_as_of_usd": "81.14"`)
		}},
		{"manifest stale", "manifests", "stale, re-export", func(f *fixture, dir string) {
			editManifest(t, dir, `"granted_as_of_usd": "18.14"`, `"granted_as_of_usd": "18.13"`)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, dir := verifyBase(t)
			if err := f.verify(jobs.VerifyOptions{}).Err(); err != nil {
				t.Fatalf("before the violation: %v", err)
			}
			tt.forge(f, dir)
			rep := f.verify(jobs.VerifyOptions{})
			c := checkNamed(t, rep, tt.check)
			if c.Status() != "FAIL" || c.Failed < 1 {
				t.Fatalf("check %s: %s with %d failing, want FAIL; all checks: %+v", tt.check, c.Status(), c.Failed, rep.Checks)
			}
			if !strings.Contains(strings.Join(c.Examples, "\n"), tt.example) {
				t.Errorf("check %s examples %q, want one containing %q", tt.check, c.Examples, tt.example)
			}
			var ve *jobs.VerifyError
			if err := rep.Err(); !errors.As(err, &ve) || !strings.Contains(err.Error(), tt.check+":") {
				t.Errorf("Err() = %v, want a *VerifyError naming %s", err, tt.check)
			}
		})
	}
}

// editManifest replaces old with new in the manifest of business date 2026-01-31.
func editManifest(t *testing.T, dir, old, new string) {
	t.Helper()
	path := filepath.Join(dir, "dt=2026-01-31", "manifest.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(string(b), " ", "")
	old, new = strings.ReplaceAll(old, " ", ""), strings.ReplaceAll(new, " ", "")
	if !strings.Contains(s, old) {
		t.Fatalf("manifest has no %s:\n%s", old, b)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(s, old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyAcceptsALiveRun: a run "running" in a session that holds the run lock is alive.
func TestVerifyAcceptsALiveRun(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	conn, err := f.db.Connx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(hashtext('creditrecon.run'))`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, `INSERT INTO recon_runs (kind, as_of, status, parameters) VALUES ('run', '2026-02-01', 'running', '{}')`); err != nil {
		t.Fatal(err)
	}
	if c := checkNamed(t, f.verify(jobs.VerifyOptions{}), "running"); c.Status() != "PASS" || c.Checked != 1 {
		t.Errorf("a live run: check running %s with %d checked, want PASS with 1: %v", c.Status(), c.Checked, c.Examples)
	}
	conn.ExecContext(ctx, `SELECT pg_advisory_unlock_all()`)
	if c := checkNamed(t, f.verify(jobs.VerifyOptions{}), "running"); c.Status() != "FAIL" {
		t.Errorf("the same run after its session let go of the lock: %s, want FAIL", c.Status())
	}
}
