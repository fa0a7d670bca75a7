package pgtest

import "testing"

func TestMain(m *testing.M) { Main(m) }

func TestNewDatabaseHasSourceTables(t *testing.T) {
	db, _ := Open(t)
	var n int
	if err := db.Get(&n, `SELECT count(*) FROM information_schema.tables
		WHERE table_name IN ('users', 'referrals', 'templates', 'usage_events')`); err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Fatalf("source tables: got %d, want 4", n)
	}
}
