package drill

import (
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/runpod/creditrecon/internal/pgtest"
)

// TestAuditFindsViolations breaks every invariant the audit checks, in a database whose triggers
// and checks are switched off, and expects the audit to name each.
func TestAuditFindsViolations(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL and the binary")
	}
	cluster = pgtest.Cluster(t)
	db, dsn := pgtest.Open(t)
	if p := run(t, dbEnv(dsn, fileURL(t)), "migrate"); p.code != 0 {
		t.Fatalf("migrate: %s", p)
	}
	if got := audit(t, db, true); len(got) != 0 {
		t.Fatalf("an empty ledger: %v", got)
	}
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{
		// Triggers (the chain check, and the foreign keys, which are triggers) and checks off.
		`SET session_replication_role = replica`,
		`ALTER TABLE credit_grants DROP CONSTRAINT credit_grants_amount_usd_check`,
		`ALTER TABLE credit_grants DROP CONSTRAINT credit_grants_idempotency_key_key`,
		`DROP INDEX credit_grants_chain`,
		`INSERT INTO recon_runs (id, kind, as_of, status, parameters, grants_written, amount_granted, grants_committed_at)
		 VALUES (1, 'run', '2026-01-01', 'succeeded', '{}', 2, 10.00, now()),
		        (2, 'run', '2026-01-01', 'running', '{}', NULL, NULL, NULL),
		        (3, 'run', '2026-01-01', 'succeeded', '{}', NULL, NULL, NULL)`,
		`INSERT INTO credit_grants (idempotency_key, program, account_id, role, beneficiary_id, amount_usd, granted_before_usd,
		   spend_usd, earned_usd, as_of, run_id) VALUES
		 ('template:a:0.00', 'template', 'a', '', 'u', 10.00, 0, 0, 0, '2026-01-01', 1),
		 ('template:a:5.00', 'template', 'a', '', 'u', 1.00, 5.00, 0, 0, '2026-01-01', 1),
		 ('template:b:0.00', 'template', 'b', '', 'u', 0, 0, 0, 0, '2025-12-01', 2),
		 ('template:c:0.00', 'template', 'c', '', 'u', 1.00, 0, 0, 0, '2026-01-01', 99),
		 ('template:c:0.00', 'template', 'c', '', 'u', 1.00, 0, 0, 0, '2026-01-01', 99)`,
	} {
		if _, err := conn.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	want := []string{
		"duplicate idempotency key",
		"two grants from one account state",
		"granted_before_usd is not the sum",
		"grant without a run",
		"grant of a run that did not record committing",
		"grant with another cutoff than its run",
		"run whose grants differ from its ledger row",
		"grant not a positive whole number of cents",
		"run left running",
		"succeeded run that did not commit",
	}
	got := strings.Join(audit(t, db, true), "\n")
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("audit did not report %q; it reported:\n%s", w, got)
		}
	}
	if mid := strings.Join(audit(t, db, false), "\n"); strings.Contains(mid, "run left running") {
		t.Errorf("the audit of a database with runs in flight reports them:\n%s", mid)
	}
}

// TestCompare checks that the ledger comparison tells double grants, lost grants and
// divergences apart.
func TestCompare(t *testing.T) {
	g := func(key, account, amount, before string) grant {
		return grant{Key: key, Account: account, Amount: amount, Before: before, AsOf: "2026-01-01T00:00:00Z"}
	}
	mk := func(gs ...grant) ledger {
		l := ledger{grants: gs, sums: map[string]decimal.Decimal{}}
		for _, x := range gs {
			l.sums[x.Account] = l.sums[x.Account].Add(decimal.RequireFromString(x.Amount))
		}
		return l
	}
	ref := mk(g("t:a:0.00", "t/a/", "10.00", "0.00"), g("t:b:0.00", "t/b/", "5.00", "0.00"))
	tests := []struct {
		name        string
		got         ledger
		over, under int
		differs     bool
	}{
		{"equal", mk(g("t:a:0.00", "t/a/", "10.00", "0.00"), g("t:b:0.00", "t/b/", "5.00", "0.00")), 0, 0, false},
		{"double", mk(g("t:a:0.00", "t/a/", "10.00", "0.00"), g("t:a:10.00", "t/a/", "10.00", "10.00"), g("t:b:0.00", "t/b/", "5.00", "0.00")), 1, 0, true},
		{"lost", mk(g("t:a:0.00", "t/a/", "10.00", "0.00")), 0, 1, true},
		{"same sums, other grants", mk(g("t:a:0.00", "t/a/", "4.00", "0.00"), g("t:a:4.00", "t/a/", "6.00", "4.00"), g("t:b:0.00", "t/b/", "5.00", "0.00")), 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := compare(tt.got, ref)
			if c.over != tt.over || c.under != tt.under || c.differs != tt.differs {
				t.Errorf("compare: over %d, under %d, differs %t; want %d, %d, %t\n%s", c.over, c.under, c.differs,
					tt.over, tt.under, tt.differs, c.detail)
			}
		})
	}
}
