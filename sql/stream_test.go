package sqlstore

import (
	"context"
	"slices"
	"testing"

	"github.com/runpod/creditrecon/internal/pgtest"
)

// TestStreamLetsFnWrite: in a transaction that writes, stream reads through a cursor a batch at a
// time, so fn may write in the same transaction between rows (a run writes its grants while it reads its accounts), and the
// cursor goes on reading the snapshot it was declared in: rows written meanwhile, though its
// query would match them, are not streamed.
func TestStreamLetsFnWrite(t *testing.T) {
	ctx := context.Background()
	db, _ := pgtest.Open(t)
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := tune(ctx, tx); err != nil {
		t.Fatal(err)
	}
	n := 2*fetchRows + 1 // three fetches
	if _, err := tx.ExecContext(ctx, "CREATE TEMP TABLE numbers (i bigint)"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO numbers SELECT generate_series(1, $1::bigint)", n); err != nil {
		t.Fatal(err)
	}
	type row struct {
		I int64 `db:"i"`
	}
	var seen []int64
	err = stream(ctx, tx, true, "read numbers", "SELECT i FROM numbers WHERE i > $1", []any{0}, func(r row) error {
		seen = append(seen, r.I)
		_, err := tx.ExecContext(ctx, "INSERT INTO numbers VALUES ($1)", r.I+int64(n))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(seen)
	want := make([]int64, n)
	for i := range want {
		want[i] = int64(i + 1)
	}
	if !slices.Equal(seen, want) {
		t.Errorf("streamed %d rows (%v ... %v), want 1 to %d once each", len(seen), seen[:min(3, len(seen))], seen[max(0, len(seen)-3):], n)
	}
	var total int
	if err := tx.GetContext(ctx, &total, "SELECT count(*) FROM numbers"); err != nil {
		t.Fatal(err)
	}
	if total != 2*n {
		t.Errorf("the table holds %d rows after the stream, want %d: fn's writes were lost", total, 2*n)
	}
	// The cursor is closed: the transaction can declare as many streams as it likes.
	var open int
	if err := tx.GetContext(ctx, &open, "SELECT count(*) FROM pg_cursors"); err != nil {
		t.Fatal(err)
	}
	if open != 0 {
		t.Errorf("%d cursors left open after the stream", open)
	}
}
