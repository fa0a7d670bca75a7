// Package synth owns the billing source tables of SPEC 3.1 for everything that is not production:
// their DDL, and a seeded generator of realistic populations for the demo, tests and benchmarks.
//
// Generate fills the tables inside PostgreSQL (INSERT ... SELECT over generate_series, on a few
// connections at once): every value is a pure function of the seed and the row number, drawn by
// hashing them with hashint8extended, so a seed gives the same rows whatever the parallelism.
// AppendDay adds the next night's usage and credit loads, late rows included, for incremental
// runs and benchmarks.
// DefaultOptions(DemoUsageRows) is the README demo's size; DefaultOptions(10_000_000) the
// reference population of the performance notes.
package synth

import (
	"context"
	_ "embed"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// SourceSchema is the DDL of the source tables (users, referrals, templates, usage_events) and
// of the optional billing sources of SPEC 8.1 (users.country, credit_loads). It is idempotent,
// and adds users.country to a users table created without it.
//
//go:embed schema.sql
var SourceSchema string

// CreateSourceTables creates the source tables if they do not exist.
func CreateSourceTables(ctx context.Context, db sqlx.ExecerContext) error {
	if _, err := db.ExecContext(ctx, SourceSchema); err != nil {
		return fmt.Errorf("create source tables: %w", err)
	}
	return nil
}
