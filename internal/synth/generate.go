package synth

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Summary counts what a Generate or AppendDay call left in the source tables.
type Summary struct {
	// Rows in each source table after the call (Loads: credit_loads).
	Users, Referrals, Templates, UsageRows, Loads int64
	// Added is the number of usage rows this call wrote, with ids FirstID..LastID.
	Added, FirstID, LastID int64
	// LoadsAdded is the number of credit_loads rows this call wrote.
	LoadsAdded int64
	// Among the rows this call wrote: ingested a day or more after they occurred, refunds
	// (negative amounts) and NaN amounts.
	Late, Refunds, NaNAmounts int64
	// Elapsed is the wall time of the call.
	Elapsed time.Duration
}

// chunkRows is the number of usage rows one INSERT writes.
const chunkRows = 500_000

// Generate fills the empty source tables (creating them if needed) with the population o
// describes: users (with a country), referrals, templates, credit loads (about 1.5 per
// referral, ids from 1) and UsageRows usage rows with ids 1..UsageRows. All rows
// are computed by PostgreSQL from hashes of (Seed, row number), so the same Options give the same
// data whatever the parallelism. The indexes, keys and foreign keys of the source tables are
// dropped for the bulk load and rebuilt after (which validates the foreign keys); the tables are
// vacuumed and analyzed. Generate is not atomic: on error the tables hold a partial population
// (run it again with Truncate), with their indexes rebuilt if possible.
func Generate(ctx context.Context, db *sqlx.DB, o Options) (_ Summary, err error) {
	began := time.Now()
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return Summary{}, err
	}
	p := newPlan(o)
	step := time.Now()
	logStep := func(what string) {
		if o.Logf != nil {
			o.Logf("synth: %s in %v", what, time.Since(step).Round(time.Millisecond))
		}
		step = time.Now()
	}
	if err := CreateSourceTables(ctx, db); err != nil {
		return Summary{}, err
	}
	if o.Truncate {
		if _, err := db.ExecContext(ctx, `TRUNCATE usage_events, credit_loads, templates, referrals, users`); err != nil {
			return Summary{}, fmt.Errorf("truncate source tables: %w", err)
		}
	} else {
		var used bool
		if err := db.GetContext(ctx, &used, `SELECT EXISTS (SELECT FROM users) OR EXISTS (SELECT FROM referrals)
			OR EXISTS (SELECT FROM templates) OR EXISTS (SELECT FROM usage_events) OR EXISTS (SELECT FROM credit_loads)`); err != nil {
			return Summary{}, fmt.Errorf("check source tables are empty: %w", err)
		}
		if used {
			return Summary{}, errors.New("generate: source tables are not empty (set Options.Truncate to empty them)")
		}
	}
	saved, err := dropIndexes(ctx, db)
	if err != nil {
		return Summary{}, err
	}
	restored := false
	defer func() {
		if err != nil && !restored {
			// Best effort: the error being returned is the one that matters.
			_ = restoreIndexes(context.WithoutCancel(ctx), db, saved)
		}
	}()
	logStep("drop indexes")
	for _, st := range []struct{ what, query string }{
		{"insert users", p.usersSQL()},
		{"insert templates", p.templatesSQL()},
		{"insert referrals", p.referralsSQL()},
	} {
		if _, err := db.ExecContext(ctx, st.query); err != nil {
			return Summary{}, fmt.Errorf("generate: %s: %w", st.what, err)
		}
		logStep(st.what)
	}
	if o.SelfReferrals > 0 {
		if _, err := db.ExecContext(ctx, p.selfReferralsSQL(), o.SelfReferrals); err != nil {
			return Summary{}, fmt.Errorf("generate: make self-referrals: %w", err)
		}
	}
	if err := execStatement(ctx, db, p.loadsSQL()); err != nil {
		return Summary{}, fmt.Errorf("generate: insert credit loads: %w", err)
	}
	logStep("insert credit loads")

	first, last := int64(1), int64(o.UsageRows)
	if err := insertUsage(ctx, db, p.usageSQL(nil), first, last, o.Parallel); err != nil {
		return Summary{}, fmt.Errorf("generate: %w", err)
	}
	logStep(fmt.Sprintf("insert %d usage rows", o.UsageRows))
	// Vacuum before the index builds: it sets the hint bits and the visibility map once, so
	// neither the builds nor the first queries write the whole table again.
	for _, q := range []string{`VACUUM ANALYZE usage_events`, `ANALYZE users, referrals, templates, credit_loads`} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return Summary{}, fmt.Errorf("generate: %s: %w", strings.ToLower(q), err)
		}
		logStep(strings.ToLower(q))
	}
	restored = true
	if err := restoreIndexes(ctx, db, saved); err != nil {
		return Summary{}, err
	}
	logStep("rebuild indexes and foreign keys")
	s, err := summarize(ctx, db, first, last, 1, math.MaxInt64)
	logStep("count")
	s.Elapsed = time.Since(began)
	return s, err
}

// AppendDay appends rows usage rows as one more day of ingestion, the nightly increment of the
// benchmarks and incremental tests: ids continue after the current largest id; a lateShare of
// the rows occurred during the 30 days before day (late rows, ingested during day), the others
// occurred during the 24 hours from day and were ingested within minutes. It appends credit
// loads the same way, one per 100 usage rows (rounded up), most of them by referred users, a
// few of them refunds; their ids continue after the largest load id. o must be the Options the
// population was generated with (Seed, Users, Templates and the rates are used).
func AppendDay(ctx context.Context, db *sqlx.DB, o Options, day time.Time, rows int, lateShare float64) (Summary, error) {
	began := time.Now()
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return Summary{}, err
	}
	if rows < 0 || lateShare < 0 || lateShare > 1 {
		return Summary{}, fmt.Errorf("append day: rows %d and late share %v must be non-negative, the share at most 1", rows, lateShare)
	}
	var maxID, maxLoad int64
	if err := db.QueryRowxContext(ctx, `SELECT (SELECT coalesce(max(id), 0) FROM usage_events),
		(SELECT coalesce(max(id), 0) FROM credit_loads)`).Scan(&maxID, &maxLoad); err != nil {
		return Summary{}, fmt.Errorf("append day: find the largest usage and load ids: %w", err)
	}
	p := newPlan(o)
	first, last := maxID+1, maxID+int64(rows)
	loads := int64((rows + dayLoadRows - 1) / dayLoadRows)
	loadFirst, loadLast := maxLoad+1, maxLoad+loads
	if rows > 0 {
		d := &dayMode{epoch: epoch(day), lateShare: lateShare}
		if err := insertUsage(ctx, db, p.usageSQL(d), first, last, o.Parallel); err != nil {
			return Summary{}, fmt.Errorf("append day: %w", err)
		}
		if err := execStatement(ctx, db, p.dayLoadsSQL(d), loadFirst, loadLast); err != nil {
			return Summary{}, fmt.Errorf("append day: insert credit loads %d..%d: %w", loadFirst, loadLast, err)
		}
	}
	s, err := summarize(ctx, db, first, last, loadFirst, loadLast)
	s.Elapsed = time.Since(began)
	return s, err
}

// summarize counts the source tables, the usage rows with ids first..last and the loads with
// ids loadFirst..loadLast.
func summarize(ctx context.Context, db *sqlx.DB, first, last, loadFirst, loadLast int64) (Summary, error) {
	var s Summary
	err := db.QueryRowxContext(ctx, `SELECT
		(SELECT count(*) FROM users), (SELECT count(*) FROM referrals),
		(SELECT count(*) FROM templates), (SELECT count(*) FROM usage_events),
		(SELECT count(*) FROM credit_loads), (SELECT count(*) FROM credit_loads WHERE id BETWEEN $1 AND $2)`, loadFirst, loadLast).
		Scan(&s.Users, &s.Referrals, &s.Templates, &s.UsageRows, &s.Loads, &s.LoadsAdded)
	if err != nil {
		return s, fmt.Errorf("count source tables: %w", err)
	}
	if last < first {
		return s, nil
	}
	err = db.QueryRowxContext(ctx, `SELECT count(*), coalesce(min(id), 0), coalesce(max(id), 0),
			count(*) FILTER (WHERE ingested_at >= occurred_at + interval '1 day'),
			count(*) FILTER (WHERE amount_usd < 0),
			count(*) FILTER (WHERE amount_usd = 'NaN')
		FROM usage_events WHERE id BETWEEN $1 AND $2`, first, last).
		Scan(&s.Added, &s.FirstID, &s.LastID, &s.Late, &s.Refunds, &s.NaNAmounts)
	if err != nil {
		return s, fmt.Errorf("count written usage rows: %w", err)
	}
	return s, nil
}

// insertUsage runs query (parameters: first and last id) over first..last in chunks, on up to
// parallel connections at once.
func insertUsage(ctx context.Context, db *sqlx.DB, query string, first, last int64, parallel int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chunks := make(chan [2]int64)
	errs := make(chan error, parallel)
	var wg sync.WaitGroup
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range chunks {
				if err := insertChunk(ctx, db, query, c[0], c[1]); err != nil {
					errs <- err
					cancel()
					return
				}
			}
		}()
	}
feed:
	for lo := first; lo <= last; lo += chunkRows {
		select {
		case chunks <- [2]int64{lo, min(last, lo+chunkRows-1)}:
		case <-ctx.Done():
			break feed
		}
	}
	close(chunks)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return ctx.Err()
	}
}

func insertChunk(ctx context.Context, db *sqlx.DB, query string, lo, hi int64) error {
	if err := execStatement(ctx, db, query, lo, hi); err != nil {
		return fmt.Errorf("insert usage rows %d..%d: %w", lo, hi, err)
	}
	return nil
}

// execStatement runs one generating statement in its own transaction, with the settings that
// suit them.
func execStatement(ctx context.Context, db *sqlx.DB, query string, args ...any) error {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// A big work_mem keeps generate_series's tuplestore in memory; JIT compilation costs more
	// than it saves on these expression-heavy but short statements.
	if _, err := tx.ExecContext(ctx, `SET LOCAL work_mem = '64MB'; SET LOCAL jit = off`); err != nil {
		return fmt.Errorf("set session: %w", err)
	}
	if _, err := tx.ExecContext(ctx, query, args...); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// sourceTables are the tables Generate fills, in load order.
var sourceTables = []string{"users", "templates", "referrals", "credit_loads", "usage_events"}

// savedIndex is an index or a constraint of a source table, dropped for the bulk load.
type savedIndex struct{ drop, create string }

// dropIndexes drops the foreign keys touching the source tables, then their key constraints and
// other indexes: a bulk load into bare tables then one index build each is faster than
// maintaining the indexes row by row (text keys compare slowly outside the C collation).
func dropIndexes(ctx context.Context, db *sqlx.DB) ([]savedIndex, error) {
	var cons []struct {
		Table string `db:"tbl"`
		Name  string `db:"conname"`
		Def   string `db:"def"`
	}
	// Foreign keys first (they depend on the keys), then keys, unique and exclusion constraints.
	if err := db.SelectContext(ctx, &cons, `SELECT conrelid::regclass::text AS tbl, conname, pg_get_constraintdef(oid) AS def
		FROM pg_constraint
		WHERE contype IN ('f', 'p', 'u', 'x')
		AND (conrelid = ANY ($1::regclass[]) OR (contype = 'f' AND confrelid = ANY ($1::regclass[])))
		ORDER BY contype <> 'f', conrelid::regclass::text, conname`, pq.Array(sourceTables)); err != nil {
		return nil, fmt.Errorf("list source table constraints: %w", err)
	}
	var saved []savedIndex
	for _, c := range cons {
		alter := "ALTER TABLE " + c.Table
		name := pq.QuoteIdentifier(c.Name)
		saved = append(saved, savedIndex{
			drop:   alter + " DROP CONSTRAINT " + name,
			create: alter + " ADD CONSTRAINT " + name + " " + c.Def,
		})
	}
	var idx []struct {
		Name string `db:"name"`
		Def  string `db:"def"`
	}
	if err := db.SelectContext(ctx, &idx, `SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def
		FROM pg_index i WHERE i.indrelid = ANY ($1::regclass[])
		AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = i.indexrelid) ORDER BY 1`, pq.Array(sourceTables)); err != nil {
		return nil, fmt.Errorf("list source table indexes: %w", err)
	}
	for _, i := range idx {
		saved = append(saved, savedIndex{drop: "DROP INDEX " + i.Name, create: i.Def})
	}
	for _, s := range saved {
		if _, err := db.ExecContext(ctx, s.drop); err != nil {
			return nil, fmt.Errorf("drop index for the bulk load: %s: %w", s.drop, err)
		}
	}
	return saved, nil
}

// restoreIndexes recreates what dropIndexes dropped, in reverse order (keys before the foreign
// keys that need them), and the primary keys of usage_events and credit_loads if they are missing
// (as after an interrupted Generate).
func restoreIndexes(ctx context.Context, db *sqlx.DB, saved []savedIndex) error {
	conn, err := db.Connx(ctx)
	if err != nil {
		return fmt.Errorf("rebuild indexes: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SET maintenance_work_mem = '1GB'`); err != nil {
		return fmt.Errorf("rebuild indexes: %w", err)
	}
	defer conn.ExecContext(context.Background(), `RESET maintenance_work_mem`)
	for i := len(saved) - 1; i >= 0; i-- {
		if _, err := conn.ExecContext(ctx, saved[i].create); err != nil {
			return fmt.Errorf("rebuild index: %s: %w", saved[i].create, err)
		}
	}
	for _, table := range []string{"usage_events", "credit_loads"} {
		var hasKey bool
		if err := conn.GetContext(ctx, &hasKey, `SELECT EXISTS (SELECT FROM pg_constraint
			WHERE conrelid = $1::regclass AND contype = 'p')`, table); err != nil {
			return fmt.Errorf("check %s primary key: %w", table, err)
		}
		if !hasKey {
			if _, err := conn.ExecContext(ctx, `ALTER TABLE `+table+` ADD PRIMARY KEY (id)`); err != nil {
				return fmt.Errorf("add %s primary key: %w", table, err)
			}
		}
	}
	return nil
}
