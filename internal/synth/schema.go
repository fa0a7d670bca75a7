// Package synth owns the billing source tables of SPEC 3.1 for everything that is not production:
// their DDL, and a seeded generator of realistic populations for the demo, tests and benchmarks.
package synth

import (
	"context"
	_ "embed"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// SourceSchema is the DDL of the source tables (users, referrals, templates, usage_events).
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
