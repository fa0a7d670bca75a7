package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestTermsThroughTheBinary runs the fixture under terms/runpod-2025.yaml through the real
// program: the program flags beside a terms file, a run, the ledger's record of its terms,
// explain, simulate and verify.
func TestTermsThroughTheBinary(t *testing.T) {
	db, dsn := newFixture(t)
	env := append(dbEnv(t, dsn), "CREDITRECON_DRAW_SECRET=an e2e draw secret of 32 bytes or more")
	const file = "../../terms/runpod-2025.yaml"

	code, _, stderr := runProc(t, env, "run", "--as-of", cutoff, "--terms", file, "--referral-rate", "0.05")
	if code != 2 || !strings.Contains(stderr, "set in the terms file") || count(t, db, `SELECT count(*) FROM recon_runs`) != 0 {
		t.Errorf("a program flag beside a terms file: exit %d, want 2 and no run; stderr:\n%s", code, stderr)
	}
	code, _, stderr = runProc(t, append(env, "CREDITRECON_TERMS="+file, "CREDITRECON_PROGRAMS=referral"), "run", "--as-of", cutoff)
	if code != 2 || !strings.Contains(stderr, "CREDITRECON_PROGRAMS") {
		t.Errorf("a program variable beside CREDITRECON_TERMS: exit %d, want 2 naming it; stderr:\n%s", code, stderr)
	}

	// The fixture's referrals are of January 2026, under runpod-2025-06: 3% of pod, no thresholds.
	if code, _, stderr = runProc(t, env, "run", "--as-of", cutoff, "--terms", file); code != 0 {
		t.Fatalf("run --terms: exit %d\n%s", code, stderr)
	}
	if n := count(t, db, `SELECT count(*) FROM credit_grants WHERE program = 'referral' AND terms_id = 'runpod-2025-06'`); n != 3 {
		t.Errorf("%d referral grants of runpod-2025-06, want 3 (ref_alice, ref_bob, ref_cat: no acceptance needed)", n)
	}
	if n := count(t, db, `SELECT count(*) FROM credit_grants WHERE program = 'serverless_referral'`); n != 0 {
		t.Errorf("%d serverless bonuses for referrals after the program ended, want 0", n)
	}
	if n := count(t, db, `SELECT count(*) FROM terms_versions`); n != 7 {
		t.Errorf("terms_versions holds %d versions, want the 7 in use", n)
	}
	code, stdout, stderr := runProc(t, env, "runs", "--json")
	var rec struct {
		Terms struct {
			FileSHA256 string `json:"file_sha256"`
			Versions   []struct{ Program, ID, SHA256 string }
		}
	}
	if code != 0 || json.Unmarshal([]byte(strings.SplitN(stdout, "\n", 2)[0]), &rec) != nil ||
		len(rec.Terms.FileSHA256) != 64 || len(rec.Terms.Versions) != 7 {
		t.Errorf("runs --json: exit %d, the run's terms %+v; want the file's SHA-256 and 7 versions\n%s%s", code, rec.Terms, stdout, stderr)
	}

	// Partner tiers: an unknown tier and a second enrollment are refused, and nothing changes.
	code, _, stderr = runProc(t, env, "enroll", "ref_alice", "--tier", "gold", "--from", "2026-03-01", "--by", "ops", "--terms", file)
	if code != 2 || !strings.Contains(stderr, `"gold" is not a partner tier`) || !strings.Contains(stderr, "affiliate-2025") {
		t.Errorf("enroll into an unknown tier: exit %d, want 2 naming the tiers\n%s", code, stderr)
	}
	if code, stdout, stderr = runProc(t, env, "enroll", "ref_alice", "--tier", "affiliate-2025", "--from", "2026-03-01", "--by", "ops",
		"--note", "25 paying referrals", "--terms", file); code != 0 || !strings.Contains(stdout, "enrolled ref_alice") {
		t.Errorf("enroll: exit %d\n%s%s", code, stdout, stderr)
	}
	code, _, stderr = runProc(t, env, "enroll", "ref_alice", "--tier", "affiliate-2025", "--from", "2026-04-01", "--by", "ops", "--terms", file)
	if code != 2 || !strings.Contains(stderr, "already enrolled in tier affiliate-2025 from 2026-03-01") {
		t.Errorf("a second enrollment: exit %d, want 2 naming the first\n%s", code, stderr)
	}
	code, _, stderr = runProc(t, env, "enroll", "ref_bob", "--tier", "affiliate-2025", "--from", "2026-02-01", "--by", "ops", "--terms", file)
	if code != 2 || !strings.Contains(stderr, "before the latest successful cutoff") {
		t.Errorf("an enrollment dated before the latest cutoff: exit %d, want 2\n%s", code, stderr)
	}
	if n := count(t, db, `SELECT count(*) FROM partner_enrollments`); n != 1 {
		t.Errorf("%d enrollments, want 1", n)
	}

	code, stdout, _ = runProc(t, env, "explain", "ref_alice", "--as-of", cutoff, "--terms", file)
	for _, want := range []string{"* referral runpod-2025-06: pod 3%, serverless 5%", "2026-07-01T01:00:00Z", "dave"} {
		if code != 0 || !strings.Contains(stdout, want) {
			t.Errorf("explain ref_alice: exit %d, want %q in\n%s", code, want, stdout)
		}
	}

	before := count(t, db, `SELECT (SELECT count(*) FROM credit_grants) + (SELECT count(*) FROM recon_runs) + (SELECT count(*) FROM terms_versions)`)
	code, stdout, stderr = runProc(t, env, "simulate", "--terms", file, "--proposed", "../../terms/seed.yaml", "--as-of", cutoff, "--json")
	var sim struct {
		Versions []struct {
			Program string `json:"program"`
			TermsID string `json:"terms_id"`
		}
		Movers []json.RawMessage
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &sim) != nil || len(sim.Versions) < 4 || len(sim.Movers) == 0 {
		t.Errorf("simulate --json: exit %d, %d versions, %d movers\n%s%s", code, len(sim.Versions), len(sim.Movers), stdout, stderr)
	}
	if after := count(t, db, `SELECT (SELECT count(*) FROM credit_grants) + (SELECT count(*) FROM recon_runs) + (SELECT count(*) FROM terms_versions)`); after != before {
		t.Errorf("simulate wrote: %d rows before, %d after", before, after)
	}

	// The seed file now would drop runpod-2025-06, which is in use: refused, naming it.
	code, _, stderr = runProc(t, env, "run", "--as-of", cutoff, "--terms", "../../terms/seed.yaml")
	if code != 2 || !strings.Contains(stderr, "referral/runpod-2025-06 is in use") {
		t.Errorf("dropping a version in use: exit %d, want 2 naming it\n%s", code, stderr)
	}
	if code, stdout, stderr = runProc(t, env, "verify", "--terms", file); code != 0 {
		t.Errorf("verify: exit %d\n%s%s", code, stdout, stderr)
	}
}
