// Package sqlstore is creditrecon's PostgreSQL adapter: the embedded migrations of the job-owned
// tables, the set-based queries that aggregate usage as of a cutoff, and the sqlx store that runs
// them for package jobs. Aggregation happens in PostgreSQL; Go receives one row per account.
//
// Driver errors are translated here: a held advisory lock becomes jobs.ErrLocked and a unique
// violation on credit_grants becomes jobs.ErrGrantConflict.
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"github.com/shopspring/decimal"

	"github.com/runpod/creditrecon/jobs"
	"github.com/runpod/creditrecon/reconcile"
)

//go:embed migrations/*.sql
var migrations embed.FS

//go:embed queries/*.sql
var queryFiles embed.FS

// RolesSQL is sql/roles/roles.sql: the least-privilege group roles (creditrecon_owner,
// creditrecon_job, creditrecon_operator, creditrecon_finance) and their grants. A DBA applies it,
// as a superuser, before the first Migrate and again after any migration that adds tables; it is
// idempotent. Migrate never applies it.
//
//go:embed roles/roles.sql
var RolesSQL string

// queries are loaded once at start-up; a missing file fails fast (see query).
var queries = loadQueries()

func loadQueries() map[string]string {
	m := map[string]string{}
	entries, err := fs.ReadDir(queryFiles, "queries")
	if err != nil {
		panic(fmt.Sprintf("read embedded queries: %v", err))
	}
	for _, e := range entries {
		b, err := queryFiles.ReadFile("queries/" + e.Name())
		if err != nil {
			panic(fmt.Sprintf("read embedded query %s: %v", e.Name(), err))
		}
		m[strings.TrimSuffix(e.Name(), ".sql")] = string(b)
	}
	return m
}

func query(name string) string {
	q, ok := queries[name]
	if !ok {
		panic("sqlstore: no embedded query " + name)
	}
	return q
}

// lockKey is the advisory lock every writing run takes: hashtext('creditrecon.run').
const lockKey = "creditrecon.run"

// Store is a PostgreSQL database holding the source tables and the job-owned tables.
type Store struct {
	db *sqlx.DB
}

var _ jobs.Store = (*Store)(nil)

// Open connects to the database at url and checks that it answers.
func Open(ctx context.Context, url string) (*Store, error) {
	db, err := sqlx.Open("postgres", url)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	db.SetMaxOpenConns(8)
	db.SetConnMaxIdleTime(time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	return &Store{db: db}, nil
}

// DB returns the connection pool, for tests and tools.
func (s *Store) DB() *sqlx.DB { return s.db }

// Close closes the connection pool.
func (s *Store) Close() error { return s.db.Close() }

// Migrate applies the embedded migrations, under goose's own session lock so that two migrating
// pods never race. It is safe to run every time.
func (s *Store) Migrate(ctx context.Context) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return fmt.Errorf("migrations lock: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, s.db.DB, fsys, goose.WithTableName("creditrecon_migrations"),
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	return nil
}

// Lock pins a connection and takes the run lock on it without waiting: jobs.ErrLocked when
// another session holds it. An unsharded run holds the run lock exclusively; a shard holds it
// shared, so that the shards of a night run together, and holds its own shard's lock
// exclusively.
func (s *Store) Lock(ctx context.Context, shard jobs.Shard) (jobs.Session, error) {
	conn, err := s.db.Connx(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect for the run lock: %w", err)
	}
	take := "SELECT pg_try_advisory_lock(hashtext($1))"
	args := []any{lockKey}
	if shard.Sharded() {
		take = "SELECT pg_try_advisory_lock_shared(hashtext($1)) AND pg_try_advisory_lock(hashtext($2), $3)"
		args = append(args, fmt.Sprintf("%s.shard.%d", lockKey, shard.Count), shard.Index)
	}
	var ok bool
	if err := conn.GetContext(ctx, &ok, take, args...); err != nil {
		conn.Close()
		return nil, fmt.Errorf("take the run lock: %w", err)
	}
	if !ok {
		// The shared lock may have been taken without the shard's: a pooled connection must
		// not keep it.
		unlockAll(conn)
		return nil, jobs.ErrLocked
	}
	return &Session{conn: conn, db: s.db, shard: shard}, nil
}

// unlockAll releases a connection's advisory locks and returns it to the pool.
func unlockAll(conn *sqlx.Conn) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn.ExecContext(ctx, "SELECT pg_advisory_unlock_all()")
	return conn.Close()
}

// Snapshot runs fn on a repeatable-read transaction of a pooled connection, and rolls it back:
// whatever fn wrote (a dry run's scratch aggregates) is never seen by anyone.
func (s *Store) Snapshot(ctx context.Context, fn func(jobs.Snapshot) error) error {
	conn, err := s.db.Connx(ctx)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	return snapshot(ctx, conn, false, fn)
}

// snapshot runs fn on a repeatable-read transaction, committed when commit is set and fn
// succeeds, rolled back otherwise.
func snapshot(ctx context.Context, conn *sqlx.Conn, commit bool, fn func(jobs.Snapshot) error) error {
	tx, err := conn.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead})
	if err != nil {
		return fmt.Errorf("begin snapshot: %w", translate(err))
	}
	defer tx.Rollback()
	snap := &Snapshot{tx: tx, writes: commit}
	if err := tx.GetContext(ctx, &snap.scratch, "SELECT -pg_backend_pid()"); err != nil {
		return fmt.Errorf("begin snapshot: %w", translate(err))
	}
	if err := tune(ctx, tx); err != nil {
		return fmt.Errorf("begin snapshot: %w", err)
	}
	if err := fn(snap); err != nil {
		return err
	}
	if !commit {
		return nil
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit run: %w", translate(err))
	}
	return nil
}

// tune sets a transaction's planner settings. JIT compilation costs seconds per aggregate query
// over millions of rows and saves less. A run's transaction reads its accounts through cursors
// (see stream), which the planner would otherwise cost for their first tenth of rows, trading
// the whole read for a fast start.
func tune(ctx context.Context, tx *sqlx.Tx) error {
	if _, err := tx.ExecContext(ctx, "SET LOCAL jit = off; SET LOCAL cursor_tuple_fraction = 1"); err != nil {
		return translate(err)
	}
	return nil
}

// Accept records an acceptance unless the referrer already has one.
func (s *Store) Accept(ctx context.Context, a jobs.Acceptance) (bool, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO referral_acceptances (referrer_id, accepted_by, note)
		VALUES ($1, $2, $3) ON CONFLICT (referrer_id) DO NOTHING`, a.ReferrerID, a.AcceptedBy, a.Note)
	if err != nil {
		return false, fmt.Errorf("record acceptance of %q: %w", a.ReferrerID, translate(err))
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Enroll records an enrollment unless the referrer already has one, which it then returns.
func (s *Store) Enroll(ctx context.Context, e jobs.Enrollment) (bool, *jobs.Enrollment, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO partner_enrollments (referrer_id, tier, enrolled_from, enrolled_by, note)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (referrer_id) DO NOTHING`, e.ReferrerID, e.Tier, e.From, e.EnrolledBy, e.Note)
	if err != nil {
		return false, nil, fmt.Errorf("record enrollment of %q: %w", e.ReferrerID, translate(err))
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return n == 1, nil, err
	}
	var existing jobs.Enrollment
	if err := s.db.GetContext(ctx, &existing, `SELECT referrer_id, tier, enrolled_from, enrolled_at, enrolled_by, note
		FROM partner_enrollments WHERE referrer_id = $1`, e.ReferrerID); err != nil {
		return false, nil, fmt.Errorf("load enrollment of %q: %w", e.ReferrerID, translate(err))
	}
	return false, &existing, nil
}

// MissingSources names credit_loads and users.country when the database lacks them.
func (s *Store) MissingSources(ctx context.Context) ([]string, error) {
	var missing []string
	if err := s.db.SelectContext(ctx, &missing, `SELECT name FROM (VALUES ('credit_loads', to_regclass('credit_loads') IS NOT NULL),
		('users.country', EXISTS (SELECT FROM information_schema.columns
		                           WHERE table_schema = current_schema() AND table_name = 'users' AND column_name = 'country'))) AS s (name, present)
		WHERE NOT present ORDER BY name`); err != nil {
		return nil, fmt.Errorf("look for credit_loads and users.country: %w", translate(err))
	}
	return missing, nil
}

// Acceptance returns the acceptance of a referrer, or nil.
func (s *Store) Acceptance(ctx context.Context, referrerID string) (*jobs.Acceptance, error) {
	var a jobs.Acceptance
	err := s.db.GetContext(ctx, &a, `SELECT referrer_id, accepted_at, accepted_by, note
		FROM referral_acceptances WHERE referrer_id = $1`, referrerID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load acceptance of %q: %w", referrerID, translate(err))
	}
	return &a, nil
}

const runColumns = `id, kind, as_of, status, started_at, finished_at, host, version, parameters, terms, allow_retroactive,
	coalesce(draw_secret_sha256, '') AS draw_secret_sha256,
	usage_rows, anomalies, grants_written, amount_granted, totals, error, shard_index, shard_count`

// Runs lists the newest runs first.
func (s *Store) Runs(ctx context.Context, limit int) ([]jobs.RunRecord, error) {
	var runs []jobs.RunRecord
	if err := s.db.SelectContext(ctx, &runs, `SELECT `+runColumns+` FROM recon_runs ORDER BY id DESC LIMIT $1`, limit); err != nil {
		return nil, fmt.Errorf("list runs: %w", translate(err))
	}
	return runs, nil
}

// BaseRun returns the newest run with a cutoff at or before asOf whose aggregates a run of shard
// can extend, or nil: an unsharded run for an unsharded run; an unsharded run or one of the same
// shard for a shard (which keeps the base's rows of its own accounts).
func (s *Store) BaseRun(ctx context.Context, asOf time.Time, shard jobs.Shard) (*jobs.BaseRun, error) {
	var b jobs.BaseRun
	err := s.db.GetContext(ctx, &b, `SELECT id, as_of, coalesce(usage_cutoff, as_of) AS usage_cutoff, started_at, seen_since,
		       considered_before, fingerprint, aggregate_input, shard_index, shard_count
		FROM recon_runs WHERE as_of <= $1 AND grants_committed_at IS NOT NULL AND seen_since IS NOT NULL
		  AND (shard_count IS NULL OR (shard_count = $2 AND shard_index = $3))
		ORDER BY id DESC LIMIT 1`, asOf, shardCount(shard), shardIndex(shard))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find a base run as_of<=%s: %w", asOf.Format(time.RFC3339), translate(err))
	}
	return &b, nil
}

// SucceededCutoffs lists the cutoffs from..to that have a successful run.
func (s *Store) SucceededCutoffs(ctx context.Context, from, to time.Time) ([]time.Time, error) {
	var out []time.Time
	if err := s.db.SelectContext(ctx, &out, `SELECT DISTINCT as_of FROM recon_runs
		WHERE status = 'succeeded' AND as_of BETWEEN $1 AND $2`, from, to); err != nil {
		return nil, fmt.Errorf("list successful runs %s..%s: %w", from.Format(time.RFC3339), to.Format(time.RFC3339), translate(err))
	}
	return out, nil
}

// TermsInUse returns the latest recorded content of each terms version in use, and the latest
// cutoff a run succeeded at (dry runs record nothing).
func (s *Store) TermsInUse(ctx context.Context) ([]jobs.RecordedVersion, time.Time, error) {
	var versions []jobs.RecordedVersion
	if err := s.db.SelectContext(ctx, &versions, `SELECT DISTINCT ON (program, id) program, id, sha256, valid_from, content, first_run_id
		FROM terms_versions ORDER BY program, id, recorded_at DESC, first_run_id DESC`); err != nil {
		return nil, time.Time{}, fmt.Errorf("read the terms versions in use: %w", translate(err))
	}
	var latest sql.NullTime
	if err := s.db.GetContext(ctx, &latest, `SELECT max(as_of) FROM recon_runs WHERE status = 'succeeded'`); err != nil {
		return nil, time.Time{}, fmt.Errorf("find the latest successful cutoff: %w", translate(err))
	}
	return versions, latest.Time, nil
}

// Session is a pinned connection holding the run lock.
type Session struct {
	conn  *sqlx.Conn
	db    *sqlx.DB // the pool, for recording the end of a run whose connection died
	shard jobs.Shard
}

// Snapshot runs fn on a repeatable-read transaction of the locked connection, rolled back.
func (s *Session) Snapshot(ctx context.Context, fn func(jobs.Snapshot) error) error {
	return snapshot(ctx, s.conn, false, fn)
}

// Transact runs fn on a repeatable-read transaction of the locked connection and commits it when
// fn succeeds: a run's aggregates, grants and counts land together or not at all.
func (s *Session) Transact(ctx context.Context, fn func(jobs.Snapshot) error) error {
	return snapshot(ctx, s.conn, true, fn)
}

// AbandonRunning marks as abandoned the runs still "running" that this session's lock proves
// dead.
func (s *Session) AbandonRunning(ctx context.Context) (int64, error) {
	// The lock held says whose runs are dead: every other run's for an unsharded run; for a
	// shard, the unsharded runs' (the run lock is shared, so none is alive) and its own shard's.
	res, err := s.conn.ExecContext(ctx, `UPDATE recon_runs
		SET status = 'abandoned', finished_at = clock_timestamp(),
		    error = 'the runner stopped without finishing (crash or kill); found by run ' || pg_backend_pid()
		WHERE status = 'running'
		  AND ($1::integer IS NULL OR shard_count IS NULL OR (shard_count = $1 AND shard_index = $2))`,
		shardCount(s.shard), shardIndex(s.shard))
	if err != nil {
		return 0, fmt.Errorf("mark abandoned runs: %w", translate(err))
	}
	return res.RowsAffected()
}

// StartRun inserts the ledger row of a run.
func (s *Session) StartRun(ctx context.Context, r jobs.RunRecord) (int64, error) {
	host, _ := os.Hostname()
	var id int64
	err := s.conn.GetContext(ctx, &id, `INSERT INTO recon_runs (kind, as_of, status, started_at, host, version, parameters,
		shard_index, shard_count, terms, allow_retroactive, draw_secret_sha256)
		VALUES ($1, $2, 'running', $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`,
		r.Kind, r.AsOf, r.StartedAt, host, r.Version, r.Parameters, r.ShardIndex, r.ShardCount, r.Terms, r.AllowRetroactive,
		nullString(r.DrawSecretSHA256))
	if err != nil {
		return 0, fmt.Errorf("start run as_of=%s: %w", r.AsOf.Format(time.RFC3339), translate(err))
	}
	return id, nil
}

func insertGrants(ctx context.Context, tx *sqlx.Tx, runID int64, asOf time.Time, grants []reconcile.Grant) error {
	n := len(grants)
	keys, programs, accounts, roles := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	beneficiaries, templates, referred := make([]string, n), make([]string, n), make([]string, n)
	amounts, before, spend, earned := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	terms, payouts, kinds, drawU, drawEntry := make([]string, n), make([]string, n), make([]string, n), make([]any, n), make([]any, n)
	for i, g := range grants {
		terms[i], payouts[i] = g.TermsID, g.Payout
		if g.Bonus != nil {
			kinds[i] = g.Bonus.Kind
			if g.Bonus.Drawn != nil {
				drawU[i], drawEntry[i] = g.Bonus.Drawn.U.String(), int64(g.Bonus.Drawn.Entry)
			}
		}
		keys[i], programs[i], accounts[i], roles[i] = g.IdempotencyKey, string(g.Program), g.AccountID, g.Role
		beneficiaries[i], templates[i], referred[i] = g.BeneficiaryID, g.TemplateID, g.ReferredUser
		amounts[i], before[i] = g.Amount.StringFixed(2), g.GrantedBefore.StringFixed(2)
		spend[i], earned[i] = g.Spend.String(), g.Earned.String()
	}
	res, err := tx.ExecContext(ctx, query("grants_insert"), asOf, runID,
		pq.Array(keys), pq.Array(programs), pq.Array(accounts), pq.Array(roles), pq.Array(beneficiaries),
		pq.Array(templates), pq.Array(referred), pq.Array(amounts), pq.Array(before), pq.Array(spend), pq.Array(earned),
		pq.Array(terms), pq.Array(payouts), pq.Array(kinds), pq.GenericArray{A: drawU}, pq.GenericArray{A: drawEntry})
	if err != nil {
		return fmt.Errorf("insert grants of run %d: %w", runID, translate(err))
	}
	written, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("insert grants of run %d: %w", runID, err)
	}
	if written != int64(n) {
		return fmt.Errorf("run %d wrote %d of %d grants: %w", runID, written, n, jobs.ErrGrantConflict)
	}
	return nil
}

// FinishRun records how the run ended. It uses its own short deadline so that a run cancelled by
// SIGTERM still records why it stopped, and falls back to a pooled connection when the locked
// one died (the driver closes a connection whose query was cancelled); then it only finishes a
// row still "running", as another runner may have taken the lock and marked it abandoned.
func (s *Session) FinishRun(ctx context.Context, runID int64, status, errText string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	const finish = `UPDATE recon_runs SET status = $2, finished_at = clock_timestamp(), error = nullif($3, '')
		WHERE id = $1 AND status = 'running'`
	if _, err := s.conn.ExecContext(ctx, finish, runID, status, errText); err != nil {
		if _, poolErr := s.db.ExecContext(ctx, finish, runID, status, errText); poolErr != nil {
			return fmt.Errorf("finish run %d: %w", runID, translate(errors.Join(err, poolErr)))
		}
	}
	return nil
}

// Close releases the locks and returns the connection to the pool.
func (s *Session) Close() error {
	return unlockAll(s.conn)
}

// Snapshot is a repeatable-read transaction.
type Snapshot struct {
	tx      *sqlx.Tx
	scratch int64 // the run id of a dry run's aggregates: -backend pid, private to this transaction
	writes  bool  // a run's transaction, which writes while it streams (see stream)
}

// run maps run 0 (a dry run or an explain) to the transaction's scratch id.
func (s *Snapshot) run(runID int64) int64 {
	if runID == 0 {
		return s.scratch
	}
	return runID
}

// The usage a pass reads: all of it, or (an incremental run) the rows since its base run.
const (
	allUsage   = "usage_events"
	deltaUsage = "(SELECT * FROM run_delta WHERE counted)"
)

// usageQuery returns an aggregate query reading from source: allUsage or deltaUsage.
func usageQuery(name, source string) string {
	return strings.ReplaceAll(query(name), "{{usage}}", source)
}

// Aggregate reads the usage tables for a run and records, under its id, the anomalies and the
// per referral and per template aggregates that exclude them. With a base run it folds into the
// base's aggregates only the rows the base did not count (see jobs.BaseRun); when the base's view
// no longer holds (referrals, templates or users behind its anomalies changed) it reads the whole
// history instead and says why in the result.
func (s *Snapshot) Aggregate(ctx context.Context, runID int64, in jobs.AggregateInput, base *jobs.BaseRun) (jobs.Aggregates, error) {
	res, err := s.aggregateRun(ctx, runID, in, base)
	if err != nil {
		return res, err
	}
	// The bindings serve the passes over usage only; the next run binds again.
	if _, err := s.tx.ExecContext(ctx, "DELETE FROM run_bindings WHERE run_id = $1", s.run(runID)); err != nil {
		return res, fmt.Errorf("drop the bindings: %w", translate(err))
	}
	return res, nil
}

func (s *Snapshot) aggregateRun(ctx context.Context, runID int64, in jobs.AggregateInput, base *jobs.BaseRun) (jobs.Aggregates, error) {
	run, at := s.run(runID), in.AsOf.Format(time.RFC3339)
	var res jobs.Aggregates
	var info struct {
		SnapshotAt time.Time `db:"snapshot_at"`
		SeenSince  time.Time `db:"seen_since"`
	}
	if err := s.tx.GetContext(ctx, &info, query("snapshot_info"), fmt.Sprintf("%d seconds", int64(in.LateMargin.Seconds()))); err != nil {
		return res, fmt.Errorf("snapshot time: %w", translate(err))
	}
	if runID == 0 {
		// A snapshot may plan more than once (simulate: current and proposed terms).
		for _, table := range []string{"run_anomalies", "run_referrals", "run_templates", "run_terms", "run_rates", "run_signups"} {
			if _, err := s.tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE run_id = $1`, run); err != nil {
				return res, fmt.Errorf("clear scratch %s: %w", table, translate(err))
			}
		}
	}
	if err := writeTerms(ctx, s.tx, run, in.Terms, referralPlan(in.Terms), templatePlan(in.Terms)); err != nil {
		return res, err
	}
	var fp struct {
		Current string  `db:"current"`
		Base    *string `db:"base"`
	}
	var baseCutoff any
	if base != nil {
		baseCutoff = base.UsageCutoff
	}
	if err := s.tx.GetContext(ctx, &fp, query("fingerprint"), in.UsageCutoff(), baseCutoff, run); err != nil {
		return res, fmt.Errorf("fingerprint as_of=%s: %w", at, translate(err))
	}
	res.Fingerprint = fp.Current
	if len(in.Terms.Signup) > 0 {
		if err := s.insertSelect(ctx, "run_signups", query("aggregate_signups"), run, in.AsOf, max(in.Shard.Count, 1), in.Shard.Index); err != nil {
			return res, fmt.Errorf("aggregate signup loads as_of=%s: %w", at, err)
		}
	}
	if base != nil {
		reason, err := s.baseInvalid(ctx, base, *fp.Base)
		if err != nil {
			return res, err
		}
		if reason == "" {
			return s.aggregateIncremental(ctx, run, in, base, res, info.SnapshotAt, info.SeenSince)
		}
		res.FullBecause = reason
	}
	res.Mode = "full"
	var seen any // a real run records the rows it saw in the anomaly pass
	if runID != 0 {
		seen = info.SeenSince
	}
	if err := s.aggregate(ctx, run, run, allUsage, in, seen); err != nil {
		return res, err
	}
	var counts struct {
		Before int64 `db:"before"`
		Future int64 `db:"future"`
	}
	if err := s.tx.GetContext(ctx, &counts, query("usage_considered"), in.UsageCutoff(), in.Latest); err != nil {
		return res, fmt.Errorf("count usage as_of=%s: %w", at, translate(err))
	}
	res.ConsideredBefore, res.Considered = counts.Before, counts.Before+counts.Future
	return s.finishAggregate(ctx, run, runID, in, res, info.SnapshotAt, info.SeenSince)
}

// aggregate finds the anomalies of source's rows and aggregates the others under run, priced by
// the terms recorded under termsRun (see writeTerms). With seenSince set (a time), the same scan
// records in run_seen the rows before the cutoff ingested since then.
func (s *Snapshot) aggregate(ctx context.Context, run, termsRun int64, source string, in jobs.AggregateInput, seenSince any) error {
	at, cutoff := in.AsOf.Format(time.RFC3339), in.UsageCutoff()
	const anomalyColumns = "run_id, usage_event_id, reason, user_id, product, template_id, amount_usd, occurred_at"
	if err := s.insertRows(ctx, true, []string{
		"run_anomalies SELECT " + anomalyColumns + " FROM creditrecon_rows WHERE reason IS NOT NULL",
		"run_seen SELECT run_id, usage_event_id FROM creditrecon_rows WHERE seen",
	}, usageQuery("anomalies_prepare", source), run, cutoff, in.Latest, in.MaxAmount, seenSince); err != nil {
		return fmt.Errorf("find anomalies as_of=%s: %w", at, err)
	}
	if _, err := s.tx.ExecContext(ctx, "ANALYZE run_anomalies"); err != nil {
		return fmt.Errorf("analyze anomalies: %w", translate(err))
	}
	shards, shard := max(in.Shard.Count, 1), in.Shard.Index
	// Bind the referrals whose usage the pass reads: every referral, or (reading the usage since
	// a base run) those of the users in it. The bindings hold only this shard's referrals. The
	// OFFSET keeps the planner from flattening the subquery: found first, the day's few referrals
	// join the users (half the time at 10M rows, against hashing every referral to probe them).
	bound := "referrals"
	if source != allUsage {
		bound = "(SELECT * FROM referrals WHERE referred_user_id IN (SELECT user_id FROM " + source + " e) OFFSET 0)"
	}
	if _, err := s.tx.ExecContext(ctx, "INSERT INTO run_bindings "+strings.ReplaceAll(query("bindings_insert"), "{{referrals}}", bound),
		termsRun, cutoff, shards, shard); err != nil {
		return fmt.Errorf("bind referrals as_of=%s: %w", at, translate(err))
	}
	if _, err := s.tx.ExecContext(ctx, "ANALYZE run_bindings (run_id, referred_user_id)"); err != nil {
		return fmt.Errorf("analyze the bindings: %w", translate(err))
	}
	referrals, templates := referralPlan(in.Terms), templatePlan(in.Terms)
	if err := s.insertAggregate(ctx, "run_referrals", referrals.expand(usageQuery("aggregate_referrals", source), false),
		run, cutoff, termsRun); err != nil {
		return fmt.Errorf("aggregate_referrals as_of=%s: %w", at, err)
	}
	if err := s.insertAggregate(ctx, "run_templates", templates.expand(usageQuery("aggregate_templates", source), true),
		run, cutoff, termsRun, shards, shard); err != nil {
		return fmt.Errorf("aggregate_templates as_of=%s: %w", at, err)
	}
	return nil
}

// insertSelect inserts the rows of a query whose columns are table's, in its order. PostgreSQL never
// runs the SELECT of an INSERT in parallel, but does run a CREATE TABLE AS in parallel: the rows
// go through a temporary table first, which costs little next to the scan of usage (the rows
// are aggregates or anomalies). The parallel plan is costed with cheap tuple transfer, because
// the planner cannot tell how few rows the anomaly filter lets through and would otherwise scan
// ten million rows on one core.
func (s *Snapshot) insertSelect(ctx context.Context, table, query string, args ...any) error {
	return s.insertRows(ctx, true, []string{table + " SELECT * FROM creditrecon_rows"}, query, args...)
}

// insertAggregate is insertSelect for a rate plan's aggregate, grouped by account, product class
// and period bucket, with sorting off. The planner cannot tell how few groups the class and
// bucket expressions make (it counts the distinct occurred_at values behind the bucket), so it
// would sort every usage row of the accounts for a group aggregate; hashing them was a fifth
// faster at 3M rows, and spares the sort's spill to disk beyond. A wrong guess costs little: a
// hash aggregate that outgrows work_mem spills too.
func (s *Snapshot) insertAggregate(ctx context.Context, table, query string, args ...any) error {
	return s.insertRows(ctx, false, []string{table + " SELECT * FROM creditrecon_rows"}, query, args...)
}

// insertRows is insertSelect with sorting on, or off for the statement, and with the rows going
// where each of inserts says: `TABLE SELECT ... FROM creditrecon_rows ...`, the tail of an INSERT.
// Under WithExplain it runs the statement under EXPLAIN ANALYZE and writes the query and its plan.
func (s *Snapshot) insertRows(ctx context.Context, sort bool, inserts []string, query string, args ...any) error {
	exec := func(statements ...string) error {
		for _, stmt := range statements {
			if _, err := s.tx.ExecContext(ctx, stmt); err != nil {
				return translate(err)
			}
		}
		return nil
	}
	set, reset := []string{"SET LOCAL parallel_tuple_cost = 0.001"}, []string{"RESET parallel_tuple_cost"}
	if !sort {
		set, reset = append(set, "SET LOCAL enable_sort = off"), append(reset, "RESET enable_sort")
	}
	if err := exec(set...); err != nil {
		return err
	}
	create := "CREATE TEMP TABLE creditrecon_rows AS " + query
	if w, ok := ctx.Value(explainKey{}).(io.Writer); ok {
		var plan []string
		if err := s.tx.SelectContext(ctx, &plan, "EXPLAIN (ANALYZE, BUFFERS) "+create, args...); err != nil {
			return translate(err)
		}
		tables := make([]string, len(inserts))
		for i, insert := range inserts {
			tables[i], _, _ = strings.Cut(insert, " ")
		}
		fmt.Fprintf(w, "-- into %s, with %s:\n%s\n\n%s\n\n", strings.Join(tables, ", "), parameters(args), strings.TrimSpace(query),
			strings.Join(plan, "\n"))
	} else if _, err := s.tx.ExecContext(ctx, create, args...); err != nil {
		return translate(err)
	}
	for _, insert := range inserts {
		reset = append(reset, "INSERT INTO "+insert)
	}
	return exec(append(reset, "DROP TABLE creditrecon_rows")...)
}

// parameters lists a statement's arguments as $1 = ..., times in RFC 3339.
func parameters(args []any) string {
	params := make([]string, len(args))
	for i, arg := range args {
		if t, ok := arg.(time.Time); ok {
			arg = t.UTC().Format(time.RFC3339Nano)
		}
		params[i] = fmt.Sprintf("$%d = %v", i+1, arg)
	}
	return strings.Join(params, ", ")
}

type explainKey struct{}

// WithExplain returns a context under which each pass over usage a run makes (its anomalies,
// aggregates and the rows it saw) is executed under EXPLAIN ANALYZE, and its query and plan are
// written to w. For finding where a run's time goes: run --query-plans.
func WithExplain(ctx context.Context, w io.Writer) context.Context {
	return context.WithValue(ctx, explainKey{}, w)
}

// baseInvalid says why base's aggregates cannot be extended, or "" when they can; fingerprint is
// what base's fingerprint is in this snapshot.
func (s *Snapshot) baseInvalid(ctx context.Context, base *jobs.BaseRun, fingerprint string) (string, error) {
	// The base was chosen outside this snapshot (a dry run holds no lock): its aggregates are
	// here as long as no newer run of its cutoff pruned them (see WriteGrants).
	var latest bool
	if err := s.tx.GetContext(ctx, &latest, `SELECT NOT EXISTS (SELECT FROM recon_runs
		WHERE as_of = $2 AND grants_committed_at IS NOT NULL AND id > $1
		  AND (shard_count IS NULL OR (shard_count = $3 AND shard_index = $4)))`,
		base.ID, base.AsOf, shardCount(base.Shard()), shardIndex(base.Shard())); err != nil {
		return "", fmt.Errorf("check base run %d: %w", base.ID, translate(err))
	}
	if !latest {
		return fmt.Sprintf("base run %d was superseded by a newer run of its cutoff", base.ID), nil
	}
	if fingerprint != base.Fingerprint {
		return fmt.Sprintf("referrals or templates before base run %d's cutoff changed", base.ID), nil
	}
	var valid bool
	if err := s.tx.GetContext(ctx, &valid, query("delta_valid"), base.ID); err != nil {
		return "", fmt.Errorf("check base run %d: %w", base.ID, translate(err))
	}
	if !valid {
		return fmt.Sprintf("a user or template unknown to base run %d appeared", base.ID), nil
	}
	return "", nil
}

// aggregateIncremental folds into base's aggregates the rows base did not count.
func (s *Snapshot) aggregateIncremental(ctx context.Context, run int64, in jobs.AggregateInput, base *jobs.BaseRun,
	res jobs.Aggregates, snapshotAt, seenSince time.Time) (jobs.Aggregates, error) {
	res.Mode, res.BaseRunID = "incremental", base.ID
	if _, err := s.tx.ExecContext(ctx, query("delta_prepare"), in.UsageCutoff(), base.UsageCutoff, base.ID, base.SeenSince, in.Latest, seenSince); err != nil {
		return res, fmt.Errorf("read usage since base run %d: %w", base.ID, translate(err))
	}
	// Autovacuum never analyzes a temporary table: without statistics the joins below guess.
	if _, err := s.tx.ExecContext(ctx, "ANALYZE run_delta"); err != nil {
		return res, fmt.Errorf("analyze the usage since base run %d: %w", base.ID, translate(err))
	}
	// The delta's own aggregates go under a second scratch id, distinct from a dry run's.
	delta := s.scratch - 1<<32
	if err := s.aggregate(ctx, delta, run, deltaUsage, in, nil); err != nil {
		return res, err
	}
	for _, name := range []string{"delta_merge_referrals", "delta_merge_templates"} {
		if _, err := s.tx.ExecContext(ctx, query(name), run, base.ID, delta, max(in.Shard.Count, 1), in.Shard.Index); err != nil {
			return res, fmt.Errorf("%s onto base run %d: %w", name, base.ID, translate(err))
		}
	}
	if _, err := s.tx.ExecContext(ctx, query("delta_merge_anomalies"), run, base.ID, delta, base.UsageCutoff); err != nil {
		return res, fmt.Errorf("merge anomalies onto base run %d: %w", base.ID, translate(err))
	}
	for _, table := range []string{"run_referrals", "run_templates", "run_anomalies"} {
		if _, err := s.tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE run_id = $1`, delta); err != nil {
			return res, fmt.Errorf("drop scratch %s: %w", table, translate(err))
		}
	}
	var counts struct {
		Before int64 `db:"before"`
		Future int64 `db:"future"`
	}
	if err := s.tx.GetContext(ctx, &counts, `SELECT count(*) FILTER (WHERE occurred_at < $1) AS before,
		count(*) FILTER (WHERE occurred_at > $2) AS future FROM run_delta WHERE counted`, in.UsageCutoff(), in.Latest); err != nil {
		return res, fmt.Errorf("count delta: %w", translate(err))
	}
	res.DeltaRows = counts.Before
	res.ConsideredBefore = base.ConsideredBefore + counts.Before
	res.Considered = res.ConsideredBefore + counts.Future
	if run > 0 {
		if err := s.insertSelect(ctx, "run_seen", query("seen_insert"), run, seenSince, in.UsageCutoff()); err != nil {
			return res, fmt.Errorf("record rows seen since %s: %w", seenSince.Format(time.RFC3339), err)
		}
	}
	return s.finishAggregate(ctx, run, run, in, res, snapshotAt, seenSince)
}

// finishAggregate counts the run's anomalies and, for a real run, records what the next run needs
// to extend this one (the rows it saw since seenSince are in run_seen already): its mode, base
// and fingerprint.
func (s *Snapshot) finishAggregate(ctx context.Context, run, runID int64, in jobs.AggregateInput, res jobs.Aggregates,
	snapshotAt, seenSince time.Time) (jobs.Aggregates, error) {
	if err := s.tx.GetContext(ctx, &res.Anomalies, "SELECT count(*) FROM run_anomalies WHERE run_id = $1", run); err != nil {
		return res, fmt.Errorf("count anomalies: %w", translate(err))
	}
	if runID == 0 || run < 0 {
		return res, nil
	}
	input, err := json.Marshal(in.Key())
	if err != nil {
		return res, fmt.Errorf("encode aggregate input: %w", err)
	}
	var baseID any
	if res.BaseRunID != 0 {
		baseID = res.BaseRunID
	}
	if _, err := s.tx.ExecContext(ctx, `UPDATE recon_runs SET mode = $2, base_run_id = $3, snapshot_at = $4, seen_since = $5,
		considered_before = $6, fingerprint = $7, aggregate_input = $8, usage_cutoff = $9 WHERE id = $1`,
		run, res.Mode, baseID, snapshotAt, seenSince, res.ConsideredBefore, res.Fingerprint, input, in.UsageCutoff()); err != nil {
		return res, fmt.Errorf("record run %d aggregates: %w", run, translate(err))
	}
	return res, nil
}

// InsertGrants writes grants of a run, in statements of at most 10,000. A key already taken
// fails with jobs.ErrGrantConflict; the caller's transaction then writes nothing.
func (s *Snapshot) InsertGrants(ctx context.Context, runID int64, asOf time.Time, grants []reconcile.Grant) error {
	const batch = 10000
	for start := 0; start < len(grants); start += batch {
		part := grants[start:min(start+batch, len(grants))]
		if err := insertGrants(ctx, s.tx, runID, asOf, part); err != nil {
			return err
		}
	}
	return nil
}

// WriteGrants writes a plan's last grants (see InsertGrants) and the run's counts, and keeps only
// this run's aggregates of its cutoff.
func (s *Snapshot) WriteGrants(ctx context.Context, runID int64, asOf time.Time, grants []reconcile.Grant, sum jobs.Summary) error {
	if err := s.InsertGrants(ctx, runID, asOf, grants); err != nil {
		return err
	}
	totals, err := json.Marshal(sum.Programs)
	if err != nil {
		return fmt.Errorf("encode run totals: %w", err)
	}
	if _, err := s.tx.ExecContext(ctx, `UPDATE recon_runs SET usage_rows = $2, anomalies = $3, grants_written = $4,
		amount_granted = $5, totals = $6, grants_committed_at = clock_timestamp() WHERE id = $1`,
		runID, sum.UsageRows, sum.Anomalies, sum.Grants, sum.Amount, totals); err != nil {
		return fmt.Errorf("record run %d counts: %w", runID, translate(err))
	}
	// Reports render from the latest runs of a cutoff; the aggregates of older runs of it that
	// this run replaces go (an unsharded run replaces every run, a shard the same shard's), and
	// so do the seen rows of runs too old to be a base.
	if _, err := s.tx.ExecContext(ctx, `DELETE FROM run_seen WHERE run_id IN
		(SELECT id FROM recon_runs WHERE id < $1 AND started_at < now() - interval '31 days')`, runID); err != nil {
		return fmt.Errorf("prune run_seen: %w", translate(err))
	}
	for _, table := range []string{"run_anomalies", "run_referrals", "run_templates", "run_seen", "run_terms", "run_rates", "run_signups"} {
		if _, err := s.tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE run_id IN
			(SELECT id FROM recon_runs WHERE as_of = $1 AND id < $2
			  AND ($3::integer IS NULL OR (shard_count = $3 AND shard_index = $4)))`,
			asOf, runID, shardCount(sum.Shard), shardIndex(sum.Shard)); err != nil {
			return fmt.Errorf("prune %s of older runs as_of=%s: %w", table, asOf.Format(time.RFC3339), translate(err))
		}
	}
	return nil
}

// RecordTerms records the versions in use at cutoff asOf (those starting before it) that
// terms_versions does not hold with this content yet.
func (s *Snapshot) RecordTerms(ctx context.Context, runID int64, asOf time.Time, versions []reconcile.VersionRecord) error {
	for _, v := range versions {
		if !v.From.IsZero() && !v.From.Before(asOf) {
			continue
		}
		// The shards of a night record the same versions at once: the shard that loses the race
		// fails to serialize, and finds them recorded (or, if the winner rolled back, records them
		// at its next run).
		if _, err := s.tx.ExecContext(ctx, "SAVEPOINT record_terms"); err != nil {
			return fmt.Errorf("record terms version %s/%s: %w", v.Program, v.ID, translate(err))
		}
		_, err := s.tx.ExecContext(ctx, `INSERT INTO terms_versions (program, id, sha256, valid_from, content, first_run_id)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
			v.Program, v.ID, v.SHA256, nullTime(v.From), string(v.Content), runID)
		var pqErr *pq.Error
		release := "RELEASE SAVEPOINT record_terms"
		if errors.As(err, &pqErr) && pqErr.Code == "40001" {
			release, err = "ROLLBACK TO SAVEPOINT record_terms", nil
		}
		if err != nil {
			return fmt.Errorf("record terms version %s/%s: %w", v.Program, v.ID, translate(err))
		}
		if _, err := s.tx.ExecContext(ctx, release); err != nil {
			return fmt.Errorf("record terms version %s/%s: %w", v.Program, v.ID, translate(err))
		}
	}
	return nil
}

// ReportRuns returns the runs the reports of a cutoff render from, nil when no run of it
// committed, or a *jobs.ShardsIncompleteError when its newest runs are shards and some shard is
// missing.
func (s *Snapshot) ReportRuns(ctx context.Context, asOf time.Time) (*jobs.ReportSet, error) {
	var runs []jobs.RunRecord
	if err := s.tx.SelectContext(ctx, &runs, strings.ReplaceAll(query("report_runs"), "{{columns}}", runColumns), asOf); err != nil {
		return nil, fmt.Errorf("find the runs of as_of=%s: %w", asOf.Format(time.RFC3339), translate(err))
	}
	if len(runs) == 0 {
		return nil, nil
	}
	if shard := runs[0].Shard(); shard.Sharded() {
		have := map[int]bool{}
		for _, r := range runs {
			have[r.Shard().Index] = true
		}
		var missing []int
		for i := range shard.Count {
			if !have[i] {
				missing = append(missing, i)
			}
		}
		if len(missing) > 0 {
			return nil, &jobs.ShardsIncompleteError{Count: shard.Count, Missing: missing}
		}
	}
	set := &jobs.ReportSet{Runs: runs}
	if err := s.tx.GetContext(ctx, &set.Anomalies, `SELECT count(DISTINCT usage_event_id) FROM run_anomalies WHERE run_id = ANY($1)`,
		pq.Array(set.IDs())); err != nil {
		return nil, fmt.Errorf("count anomalies of runs %v: %w", set.IDs(), translate(err))
	}
	return set, nil
}

// Anomalies streams the anomalies of runs in usage id order, each row once.
func (s *Snapshot) Anomalies(ctx context.Context, runIDs []int64, fn func(jobs.Anomaly) error) error {
	return stream(ctx, s.tx, s.writes, "list anomalies", query("anomalies_list"), []any{pq.Array(runIDs)}, func(a jobs.Anomaly) error {
		if a.OccurredAt != nil {
			utc := a.OccurredAt.UTC()
			a.OccurredAt = &utc
		}
		return fn(a)
	})
}

type referrerRow struct {
	ReferrerID  string          `db:"referrer_id"`
	TermsID     string          `db:"terms_id"`
	Referrals   int64           `db:"referrals"`
	NotNew      int64           `db:"not_new"`
	UsageRows   int64           `db:"usage_rows"`
	Spend       decimal.Decimal `db:"spend"`
	Earned      decimal.Decimal `db:"earned"`
	Accepted    bool            `db:"accepted"`
	Granted     decimal.Decimal `db:"granted"`
	GrantedAsOf decimal.Decimal `db:"granted_as_of"`
}

// Referrers streams a run's Referral Program accounts, ordered by referrer id.
func (s *Snapshot) Referrers(ctx context.Context, q jobs.Query, fn func(reconcile.ReferrerTotals) error) error {
	args := s.args(q)
	args = append(args, args[0].(pq.Int64Array)[0]) // the terms of the set's first run
	return stream(ctx, s.tx, s.writes, "read referrers", query("referrers"), args, func(r referrerRow) error {
		return fn(reconcile.ReferrerTotals{ReferrerID: r.ReferrerID, TermsID: r.TermsID, Referrals: r.Referrals, NotNew: r.NotNew,
			UsageRows: r.UsageRows, Spend: r.Spend, Earned: r.Earned, Accepted: r.Accepted, Granted: r.Granted, GrantedAsOf: r.GrantedAsOf})
	})
}

type templateRow struct {
	TemplateID     string          `db:"template_id"`
	TermsID        string          `db:"terms_id"`
	Earned         decimal.Decimal `db:"earned"`
	CreatorID      string          `db:"creator_id"`
	UsageRows      int64           `db:"usage_rows"`
	RuntimeSeconds int64           `db:"runtime_seconds"`
	Spend          decimal.Decimal `db:"spend"`
	Granted        decimal.Decimal `db:"granted"`
	GrantedAsOf    decimal.Decimal `db:"granted_as_of"`
}

// Templates streams a run's Template Program accounts, ordered by template id.
func (s *Snapshot) Templates(ctx context.Context, q jobs.Query, fn func(reconcile.TemplateTotals) error) error {
	return stream(ctx, s.tx, s.writes, "read templates", query("templates"), s.args(q), func(r templateRow) error {
		return fn(reconcile.TemplateTotals{TemplateID: r.TemplateID, TermsID: r.TermsID, Earned: r.Earned, CreatorID: r.CreatorID, UsageRows: r.UsageRows,
			RuntimeSeconds: r.RuntimeSeconds, Spend: r.Spend, Granted: r.Granted, GrantedAsOf: r.GrantedAsOf})
	})
}

type serverlessRow struct {
	ReferredUserID      string          `db:"referred_user_id"`
	TermsID             string          `db:"terms_id"`
	ReferrerID          string          `db:"referrer_id"`
	UsageRows           int64           `db:"usage_rows"`
	Spend               decimal.Decimal `db:"spend"`
	GrantedReferrer     decimal.Decimal `db:"granted_referrer"`
	GrantedReferred     decimal.Decimal `db:"granted_referred"`
	GrantedReferrerAsOf decimal.Decimal `db:"granted_referrer_as_of"`
	GrantedReferredAsOf decimal.Decimal `db:"granted_referred_as_of"`
}

// Serverless streams a run's Serverless Referral Program accounts, ordered by referred user id.
func (s *Snapshot) Serverless(ctx context.Context, q jobs.Query, fn func(reconcile.ServerlessTotals) error) error {
	return stream(ctx, s.tx, s.writes, "read serverless referrals", query("serverless"), s.args(q), func(r serverlessRow) error {
		return fn(reconcile.ServerlessTotals{ReferredUserID: r.ReferredUserID, TermsID: r.TermsID, ReferrerID: r.ReferrerID,
			UsageRows: r.UsageRows, Spend: r.Spend,
			GrantedReferrer: r.GrantedReferrer, GrantedReferred: r.GrantedReferred,
			GrantedReferrerAsOf: r.GrantedReferrerAsOf, GrantedReferredAsOf: r.GrantedReferredAsOf})
	})
}

// Referrals streams up to limit referrals of q.Beneficiary (as referrer or referred user) made
// before q.AsOf, bound by the terms of the scratch run this snapshot aggregated last.
func (s *Snapshot) Referrals(ctx context.Context, q jobs.Query, limit int, fn func(jobs.ReferralBinding) error) error {
	args := []any{s.run(q.RunID), q.AsOf, q.Beneficiary, limit}
	return stream(ctx, s.tx, s.writes, "list referrals", query("explain_referrals"), args, func(b jobs.ReferralBinding) error {
		b.ReferredAt = b.ReferredAt.UTC()
		for _, t := range []*time.Time{b.WindowEnd, b.ServerlessWindowEnd} {
			if t != nil {
				*t = t.UTC()
			}
		}
		return fn(b)
	})
}

type signupRow struct {
	ReferredUserID      string          `db:"referred_user_id"`
	TermsID             string          `db:"terms_id"`
	ReferrerID          string          `db:"referrer_id"`
	Loads               decimal.Decimal `db:"loads"`
	ReferrerCountry     *string         `db:"referrer_country"`
	ReferredCountry     *string         `db:"referred_country"`
	GrantedReferrer     decimal.Decimal `db:"granted_referrer"`
	GrantedReferred     decimal.Decimal `db:"granted_referred"`
	GrantedReferrerAsOf decimal.Decimal `db:"granted_referrer_as_of"`
	GrantedReferredAsOf decimal.Decimal `db:"granted_referred_as_of"`
}

// Signups streams a run's signup bonus accounts, ordered by referred user id.
func (s *Snapshot) Signups(ctx context.Context, q jobs.Query, fn func(reconcile.SignupTotals) error) error {
	return stream(ctx, s.tx, s.writes, "read signup bonuses", query("signups"), s.args(q), func(r signupRow) error {
		return fn(reconcile.SignupTotals{ReferredUserID: r.ReferredUserID, TermsID: r.TermsID, ReferrerID: r.ReferrerID,
			Loads: r.Loads, ReferrerCountry: r.ReferrerCountry, ReferredCountry: r.ReferredCountry,
			GrantedReferrer: r.GrantedReferrer, GrantedReferred: r.GrantedReferred,
			GrantedReferrerAsOf: r.GrantedReferrerAsOf, GrantedReferredAsOf: r.GrantedReferredAsOf})
	})
}

// Grants streams grants in id order.
func (s *Snapshot) Grants(ctx context.Context, f jobs.GrantFilter, fn func(jobs.GrantRecord) error) error {
	args := []any{nullTime(f.AsOf), nullString(f.Beneficiary)}
	return stream(ctx, s.tx, s.writes, "list grants", query("grants_list"), args, func(g jobs.GrantRecord) error {
		g.AsOf, g.CreatedAt = g.AsOf.UTC(), g.CreatedAt.UTC()
		return fn(g)
	})
}

// GrantTotals sums grants per program as of a cutoff; programs without grants are zero.
func (s *Snapshot) GrantTotals(ctx context.Context, asOf time.Time) (map[reconcile.Program]jobs.GrantTotal, error) {
	var rows []struct {
		Program       string          `db:"program"`
		GrantsAsOf    int64           `db:"grants_as_of"`
		GrantedAsOf   decimal.Decimal `db:"granted_as_of"`
		GrantedToDate decimal.Decimal `db:"granted_to_date"`
	}
	if err := s.tx.SelectContext(ctx, &rows, query("grant_totals"), asOf); err != nil {
		return nil, fmt.Errorf("sum grants as_of=%s: %w", asOf.Format(time.RFC3339), translate(err))
	}
	totals := map[reconcile.Program]jobs.GrantTotal{}
	for _, r := range rows {
		totals[reconcile.Program(r.Program)] = jobs.GrantTotal{GrantsAsOf: r.GrantsAsOf, GrantedAsOf: r.GrantedAsOf, GrantedToDate: r.GrantedToDate}
	}
	return totals, nil
}

// PayoutTotals sums grants per payout (credits, cash) as of a cutoff; payouts without grants
// are zero.
func (s *Snapshot) PayoutTotals(ctx context.Context, asOf time.Time) (map[string]jobs.GrantTotal, error) {
	var rows []struct {
		Payout        string          `db:"payout"`
		GrantsAsOf    int64           `db:"grants_as_of"`
		GrantedAsOf   decimal.Decimal `db:"granted_as_of"`
		GrantedToDate decimal.Decimal `db:"granted_to_date"`
	}
	if err := s.tx.SelectContext(ctx, &rows, query("grant_payout_totals"), asOf); err != nil {
		return nil, fmt.Errorf("sum grants per payout as_of=%s: %w", asOf.Format(time.RFC3339), translate(err))
	}
	totals := map[string]jobs.GrantTotal{}
	for _, r := range rows {
		totals[r.Payout] = jobs.GrantTotal{GrantsAsOf: r.GrantsAsOf, GrantedAsOf: r.GrantedAsOf, GrantedToDate: r.GrantedToDate}
	}
	return totals, nil
}

// args are the arguments of the account queries: runs, cutoff, beneficiary, shard count and index.
func (s *Snapshot) args(q jobs.Query) []any {
	runs := q.Runs
	if len(runs) == 0 {
		runs = []int64{s.run(q.RunID)}
	}
	return []any{pq.Int64Array(runs), q.AsOf, nullString(q.Beneficiary), max(q.Shard.Count, 1), q.Shard.Index}
}

// shardCount and shardIndex are a run's shard columns: NULL when it is unsharded.
func shardCount(s jobs.Shard) any {
	if !s.Sharded() {
		return nil
	}
	return s.Count
}

func shardIndex(s jobs.Shard) any {
	if !s.Sharded() {
		return nil
	}
	return s.Index
}

// fetchRows is how many rows a stream through a cursor fetches at a time.
const fetchRows = 5000

// cursors numbers the cursors that stream declares, so that one stream may run inside another.
var cursors atomic.Int64

// stream runs a query in tx and calls fn with each row, scanned into a T. A transaction that
// only reads streams the rows as PostgreSQL sends them. One that writes (cursor set) reads them
// through a cursor, fetchRows at a time, and calls fn for the rows of a fetch once it is read:
// between fetches the connection is free, so fn may write in the same transaction (a run writes
// its grants while it reads its accounts, and holds a batch of them), while the cursor goes on
// reading the snapshot it was declared in. Either way memory holds a fetch at most.
func stream[T any](ctx context.Context, tx *sqlx.Tx, cursor bool, what, text string, args []any, fn func(T) error) error {
	if !cursor {
		rows, err := tx.QueryxContext(ctx, text, args...)
		if err != nil {
			return fmt.Errorf("%s: %w", what, translate(err))
		}
		defer rows.Close()
		for rows.Next() {
			var row T
			if err := rows.StructScan(&row); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			if err := fn(row); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("%s: %w", what, translate(err))
		}
		return nil
	}
	name := fmt.Sprintf("creditrecon_stream_%d", cursors.Add(1))
	if _, err := tx.ExecContext(ctx, "DECLARE "+name+" NO SCROLL CURSOR FOR "+text, args...); err != nil {
		return fmt.Errorf("%s: %w", what, translate(err))
	}
	fetch := fmt.Sprintf("FETCH FORWARD %d FROM %s", fetchRows, name)
	batch := make([]T, 0, fetchRows)
	for {
		batch = batch[:0]
		if err := tx.SelectContext(ctx, &batch, fetch); err != nil {
			return fmt.Errorf("%s: %w", what, translate(err))
		}
		for _, row := range batch {
			if err := fn(row); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
		}
		if len(batch) < fetchRows {
			break
		}
	}
	if _, err := tx.ExecContext(ctx, "CLOSE "+name); err != nil {
		return fmt.Errorf("%s: %w", what, translate(err))
	}
	return nil
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// translate turns driver errors into the project's: unique violations on grants become
// jobs.ErrGrantConflict; others keep the driver's message and code.
func translate(err error) error {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code == "23505" {
		return fmt.Errorf("%w: %s", jobs.ErrGrantConflict, pqErr.Message)
	}
	return err
}

var _ jobs.Auditor = (*Store)(nil)

// AuditLedger runs the set-based checks of queries/verify_NN_*.sql, in file order, on one
// read-only snapshot. Each query returns one row: name, title, rows checked, rows failed and the
// first failing rows.
func (s *Store) AuditLedger(ctx context.Context) ([]jobs.Check, error) {
	var names []string
	for name := range queries {
		if rest, ok := strings.CutPrefix(name, "verify_"); ok && rest != "" && rest[0] >= '0' && rest[0] <= '9' {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	tx, err := s.db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("begin audit: %w", err)
	}
	defer tx.Rollback()
	checks := make([]jobs.Check, 0, len(names))
	for _, name := range names {
		var c jobs.Check
		if err := tx.QueryRowxContext(ctx, query(name)).Scan(&c.Name, &c.Title, &c.Checked, &c.Failed, pq.Array(&c.Examples)); err != nil {
			return nil, fmt.Errorf("audit %s: %w", name, translate(err))
		}
		checks = append(checks, c)
	}
	return checks, tx.Commit()
}

// GrantedAccounts streams every account that has grants with its total and its latest grant's
// cutoff and run, ordered by that cutoff and run; only those whose latest grant is as of asOf
// when asOf is set.
func (s *Store) GrantedAccounts(ctx context.Context, asOf time.Time, fn func(jobs.GrantedAccount) error) error {
	tx, err := s.db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("begin audit: %w", err)
	}
	defer tx.Rollback()
	err = stream(ctx, tx, false, "list granted accounts", query("verify_accounts"), []any{nullTime(asOf)}, func(a jobs.GrantedAccount) error {
		a.AsOf = a.AsOf.UTC()
		return fn(a)
	})
	if err != nil {
		return err
	}
	return tx.Commit()
}

// DrawnGrants streams the drawn signup bonus grants with their run's draw secret hash and terms.
func (s *Store) DrawnGrants(ctx context.Context, fn func(jobs.DrawnGrant) error) error {
	tx, err := s.db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("begin audit: %w", err)
	}
	defer tx.Rollback()
	err = stream(ctx, tx, false, "list drawn bonuses", `SELECT g.id, g.terms_id, g.account_id, g.role, g.amount_usd, g.draw_u::text AS draw_u,
		       g.draw_entry, g.run_id, coalesce(r.draw_secret_sha256, '') AS draw_secret_sha256, r.parameters, r.terms
		  FROM credit_grants g JOIN recon_runs r ON r.id = g.run_id
		 WHERE g.bonus_kind = 'draw' ORDER BY g.id`, nil, fn)
	if err != nil {
		return err
	}
	return tx.Commit()
}

// CommittedCutoffs lists, in order, the cutoffs that have a run which committed its grants.
func (s *Store) CommittedCutoffs(ctx context.Context) ([]time.Time, error) {
	var out []time.Time
	if err := s.db.SelectContext(ctx, &out, query("verify_cutoffs")); err != nil {
		return nil, fmt.Errorf("list committed cutoffs: %w", translate(err))
	}
	for i := range out {
		out[i] = out[i].UTC()
	}
	return out, nil
}
