package drill

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/shopspring/decimal"
)

// audit checks the invariants of the grants and run ledgers that hold at any instant, whatever
// was killed, cut off or run twice; quiescent adds those that hold once no runner is in flight
// and a run has completed. It returns one line per violation.
//
// The invariants, each a query that lists its violations:
//   - no two grants share an idempotency key, or a position in their account's chain;
//   - each grant's granted_before_usd is the sum of its account's earlier grants;
//   - every grant belongs to an existing run that recorded committing its grants, for the same
//     cutoff;
//   - each run that committed has exactly the grants its ledger row counts (grants_written,
//     amount_granted), and a run that did not commit has none: all of a run's grants or none;
//   - no grant is zero, negative or has sub-cents, nor does its granted_before_usd;
//   - quiescent: no run is left running, and every run marked succeeded committed its grants.
func audit(t testing.TB, db *sqlx.DB, quiescent bool) []string {
	t.Helper()
	checks := []struct{ what, query string }{
		{"duplicate idempotency key", `SELECT idempotency_key || ' ×' || count(*) FROM credit_grants
			GROUP BY idempotency_key HAVING count(*) > 1`},
		{"two grants from one account state", `SELECT program || '@' || terms_id || '/' || account_id || '/' || role || ' at ' || granted_before_usd || ' ×' || count(*)
			FROM credit_grants GROUP BY program, terms_id, account_id, role, granted_before_usd HAVING count(*) > 1`},
		{"granted_before_usd is not the sum of the account's earlier grants", `SELECT idempotency_key || ': says ' || granted_before_usd || ', earlier grants sum to ' || before
			FROM (SELECT idempotency_key, granted_before_usd, coalesce(sum(amount_usd) OVER (PARTITION BY program, terms_id, account_id, role ORDER BY id
			        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before FROM credit_grants) c
			WHERE before <> granted_before_usd`},
		{"grant without a run", `SELECT g.idempotency_key || ' (run ' || g.run_id || ')' FROM credit_grants g
			LEFT JOIN recon_runs r ON r.id = g.run_id WHERE r.id IS NULL`},
		{"grant of a run that did not record committing", `SELECT g.idempotency_key || ' (run ' || r.id || ', ' || r.status || ')'
			FROM credit_grants g JOIN recon_runs r ON r.id = g.run_id WHERE r.grants_committed_at IS NULL`},
		{"grant with another cutoff than its run", `SELECT g.idempotency_key || ' as_of ' || g.as_of || ', run ' || r.id || ' as_of ' || r.as_of
			FROM credit_grants g JOIN recon_runs r ON r.id = g.run_id WHERE g.as_of <> r.as_of`},
		{"run whose grants differ from its ledger row (partial grants)", `SELECT 'run ' || r.id || ' (' || r.status || ', committed ' ||
			(r.grants_committed_at IS NOT NULL) || '): ledger says ' || coalesce(r.grants_written::text, 'null') || ' grants ' ||
			coalesce(r.amount_granted::text, 'null') || ' USD, has ' || coalesce(g.n, 0) || ' grants ' || coalesce(g.s, 0) || ' USD'
			FROM recon_runs r LEFT JOIN (SELECT run_id, count(*) AS n, sum(amount_usd) AS s FROM credit_grants GROUP BY run_id) g ON g.run_id = r.id
			WHERE CASE WHEN r.grants_committed_at IS NULL THEN coalesce(g.n, 0) <> 0
			           ELSE r.grants_written IS DISTINCT FROM coalesce(g.n, 0)::int
			             OR r.amount_granted IS DISTINCT FROM coalesce(g.s, 0)::numeric(14,2) END`},
		{"grant not a positive whole number of cents", `SELECT idempotency_key || ': ' || amount_usd || ' (granted before ' || granted_before_usd || ')'
			FROM credit_grants WHERE amount_usd <= 0 OR amount_usd <> trunc(amount_usd, 2)
			   OR granted_before_usd < 0 OR granted_before_usd <> trunc(granted_before_usd, 2)`},
	}
	if quiescent {
		checks = append(checks,
			struct{ what, query string }{"run left running", `SELECT 'run ' || id FROM recon_runs WHERE status = 'running'`},
			struct{ what, query string }{"succeeded run that did not commit", `SELECT 'run ' || id FROM recon_runs
				WHERE status = 'succeeded' AND grants_committed_at IS NULL`})
	}
	var out []string
	for _, c := range checks {
		var rows []string
		if err := db.Select(&rows, c.query); err != nil {
			t.Fatalf("audit %s: %v", c.what, err)
		}
		for _, r := range rows {
			out = append(out, c.what+": "+r)
		}
	}
	return out
}

// grant is a grant reduced to what must be equal between two databases: not its id, run or
// creation time.
type grant struct {
	Key         string `db:"idempotency_key"`
	Program     string `db:"program"`
	Account     string `db:"account"`
	Beneficiary string `db:"beneficiary_id"`
	Amount      string `db:"amount_usd"`
	Before      string `db:"granted_before_usd"`
	AsOf        string `db:"as_of"`
}

// ledger is a database's grants: every grant, ordered by key, and the sum per account.
type ledger struct {
	grants []grant
	sums   map[string]decimal.Decimal // by program@terms_id/account_id/role
}

func readLedger(t testing.TB, db *sqlx.DB) ledger {
	t.Helper()
	var l ledger
	if err := db.Select(&l.grants, `SELECT idempotency_key, program, program || '@' || terms_id || '/' || account_id || '/' || role AS account,
		beneficiary_id, amount_usd::text AS amount_usd, granted_before_usd::text AS granted_before_usd,
		to_char(as_of AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS as_of
		FROM credit_grants ORDER BY idempotency_key COLLATE "C"`); err != nil {
		t.Fatalf("read grants: %v", err)
	}
	l.sums = map[string]decimal.Decimal{}
	for _, g := range l.grants {
		l.sums[g.Account] = l.sums[g.Account].Add(decimal.RequireFromString(g.Amount))
	}
	return l
}

// comparison is how a ledger differs from the reference.
type comparison struct {
	over, under int  // accounts granted more (a double grant) or less (a lost grant) than the reference
	differs     bool // the grants are not the reference's, grant for grant
	detail      string
}

// compare compares got with the reference want, account by account and grant by grant.
func compare(got, want ledger) comparison {
	var c comparison
	var b strings.Builder
	accounts := map[string]bool{}
	for a := range got.sums {
		accounts[a] = true
	}
	for a := range want.sums {
		accounts[a] = true
	}
	keys := make([]string, 0, len(accounts))
	for a := range accounts {
		keys = append(keys, a)
	}
	slices.Sort(keys)
	for _, a := range keys {
		g, w := got.sums[a], want.sums[a]
		switch g.Cmp(w) {
		case 1:
			c.over++
			fmt.Fprintf(&b, "  %s: granted %s, clean run %s (DOUBLE GRANT)\n", a, g.StringFixed(2), w.StringFixed(2))
		case -1:
			c.under++
			fmt.Fprintf(&b, "  %s: granted %s, clean run %s (LOST GRANT)\n", a, g.StringFixed(2), w.StringFixed(2))
		}
	}
	if !slices.Equal(got.grants, want.grants) {
		c.differs = true
		fmt.Fprintf(&b, "  grants differ: %d here, %d in the clean run\n", len(got.grants), len(want.grants))
		wantSet := map[grant]bool{}
		for _, g := range want.grants {
			wantSet[g] = true
		}
		shown := 0
		for _, g := range got.grants {
			if !wantSet[g] && shown < 5 {
				fmt.Fprintf(&b, "    not in the clean run: %+v\n", g)
				shown++
			}
		}
	}
	c.differs = c.differs || c.over > 0 || c.under > 0
	c.detail = b.String()
	return c
}
