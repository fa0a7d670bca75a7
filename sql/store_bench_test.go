package sqlstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/runpod/creditrecon/internal/pgtest"
	"github.com/runpod/creditrecon/jobs"
	"github.com/runpod/creditrecon/reconcile"
	sqlstore "github.com/runpod/creditrecon/sql"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// BenchmarkWriteGrants measures writing one run's grants in batches (the unique keys and the
// account-chain trigger included), 10,000 grants per operation, rolled back after each.
func BenchmarkWriteGrants(b *testing.B) {
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, pgtest.NewDatabase(b))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	asOf := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	var runID int64
	if err := st.DB().Get(&runID, `INSERT INTO recon_runs (kind, as_of, status, parameters)
		VALUES ('run', $1, 'running', '{}') RETURNING id`, asOf); err != nil {
		b.Fatal(err)
	}
	const n = 10_000
	grants := make([]reconcile.Grant, n)
	for i := range grants {
		account := fmt.Sprintf("user_%d", i)
		grants[i] = reconcile.Grant{IdempotencyKey: reconcile.IdempotencyKey(reconcile.Referral, account, "", decimal.Zero),
			Program: reconcile.Referral, AccountID: account, BeneficiaryID: account, Amount: decimal.New(1234, -2),
			Spend: decimal.NewFromInt(617), Earned: decimal.New(1234, -2), AsOf: asOf}
	}
	b.ReportAllocs()
	for b.Loop() {
		err := st.Snapshot(ctx, func(s jobs.Snapshot) error {
			return s.WriteGrants(ctx, runID, asOf, grants, jobs.Summary{})
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "grants/s")
}
