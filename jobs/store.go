package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/shopspring/decimal"

	"github.com/runpod/creditrecon/reconcile"
)

// Errors a Store returns, translated from the driver's at the edge.
var (
	// ErrLocked means another runner holds the advisory lock: a run or backfill is in progress.
	ErrLocked = errors.New("another creditrecon run holds the lock")
	// ErrGrantConflict means a grant of the plan was already written by another writer since the
	// run read its snapshot. The run wrote nothing; running it again converges.
	ErrGrantConflict = errors.New("grants changed since the run's snapshot (another writer)")
	// ErrMissingSource means the terms need an optional billing table or column (SPEC 8.1) that
	// the database lacks. Nothing was done.
	ErrMissingSource = errors.New("a source table or column is missing")
)

// Store is the database: the source tables, read only, and the job-owned tables.
type Store interface {
	Reader
	Auditor
	// Migrate creates or upgrades the job-owned tables.
	Migrate(ctx context.Context) error
	// Lock takes the run lock on a pinned connection, or returns ErrLocked: an unsharded run
	// excludes every other run; a shard excludes unsharded runs and the same shard, so the
	// shards of a night run at once.
	Lock(ctx context.Context, shard Shard) (Session, error)
	// Accept records a Referral Program acceptance; created is false if one was already recorded.
	Accept(ctx context.Context, a Acceptance) (created bool, err error)
	// Enroll records a referrer's enrollment into a partner tier; created is false if the
	// referrer already has one (enrollments are final), which existing then holds.
	Enroll(ctx context.Context, e Enrollment) (created bool, existing *Enrollment, err error)
	// MissingSources names the optional billing tables and columns of SPEC 8.1 (credit_loads,
	// users.country) that the database lacks.
	MissingSources(ctx context.Context) ([]string, error)
	// SucceededCutoffs lists the cutoffs from..to (both included) that have a successful run.
	SucceededCutoffs(ctx context.Context, from, to time.Time) ([]time.Time, error)
	// BaseRun returns the newest committed run with a cutoff at or before asOf that recorded
	// what an incremental run needs and whose accounts cover shard's (an unsharded run, or one
	// of the same shard), or nil.
	BaseRun(ctx context.Context, asOf time.Time, shard Shard) (*BaseRun, error)
	// Runs lists the run ledger, newest first.
	Runs(ctx context.Context, limit int) ([]RunRecord, error)
	// TermsInUse returns the latest recorded content of every terms version in use and the
	// latest cutoff a run succeeded at (zero: none).
	TermsInUse(ctx context.Context) ([]RecordedVersion, time.Time, error)
	Close() error
}

// Reader opens consistent read snapshots.
type Reader interface {
	// Snapshot calls fn with one consistent (repeatable read) view of the database.
	Snapshot(ctx context.Context, fn func(Snapshot) error) error
}

// Session holds the run lock on one connection; every read and write of a run goes through it,
// so a run that lost its lock (its connection died) cannot write either.
type Session interface {
	Reader
	// AbandonRunning marks runs left "running" by a crashed runner as abandoned.
	AbandonRunning(ctx context.Context) (int64, error)
	// StartRun inserts a run ledger row with status running and returns its id.
	StartRun(ctx context.Context, r RunRecord) (int64, error)
	// Transact calls fn with a snapshot it commits when fn succeeds: a run's aggregates, grants
	// and counts land together or not at all.
	Transact(ctx context.Context, fn func(Snapshot) error) error
	// FinishRun records the run's end status and error.
	FinishRun(ctx context.Context, runID int64, status, errText string) error
	// Close releases the lock and the connection.
	Close() error
}

// Snapshot is one consistent (repeatable read) view of the database. Run 0 names the scratch
// aggregates of a dry run or an explain, private to the snapshot and never committed.
type Snapshot interface {
	// Aggregate reads the usage tables for a run: it records the invalid rows (anomalies) and
	// the per-referral and per-template aggregates that exclude them.
	// With a base run it reads only the rows the base did not count and adds the base's
	// aggregates, unless the base's view of old usage no longer holds (Aggregates.FullBecause).
	Aggregate(ctx context.Context, runID int64, in AggregateInput, base *BaseRun) (Aggregates, error)
	// InsertGrants writes grants of run runID: ErrGrantConflict when any grant's key is already
	// taken (the snapshot's transaction must then be rolled back). A run calls it while it streams
	// its accounts, between the rows of the account queries.
	InsertGrants(ctx context.Context, runID int64, asOf time.Time, grants []reconcile.Grant) error
	// WriteGrants writes the run's last grants, as InsertGrants, and the run's counts.
	WriteGrants(ctx context.Context, runID int64, asOf time.Time, grants []reconcile.Grant, s Summary) error
	// RecordTerms records the terms versions run runID used that are in use at its cutoff (those
	// that start before it) in terms_versions, once per distinct content.
	RecordTerms(ctx context.Context, runID int64, asOf time.Time, versions []reconcile.VersionRecord) error
	// ReportRuns returns the runs the reports of a cutoff render from (nil: no run committed),
	// or a *ShardsIncompleteError.
	ReportRuns(ctx context.Context, asOf time.Time) (*ReportSet, error)
	// Anomalies streams the anomalies of runs in usage id order, each row once.
	Anomalies(ctx context.Context, runIDs []int64, fn func(Anomaly) error) error
	// Referrers, Templates and Serverless stream a run's accounts, with their grants, in id order.
	// The streams read the snapshot as it was when they began: fn may insert grants meanwhile.
	Referrers(ctx context.Context, q Query, fn func(reconcile.ReferrerTotals) error) error
	Templates(ctx context.Context, q Query, fn func(reconcile.TemplateTotals) error) error
	Serverless(ctx context.Context, q Query, fn func(reconcile.ServerlessTotals) error) error
	// Signups streams a run's signup bonus accounts (SPEC 8.1) in referred user id order.
	Signups(ctx context.Context, q Query, fn func(reconcile.SignupTotals) error) error
	// Referrals streams up to limit referrals of q.Beneficiary as of q.AsOf with the terms
	// versions they bind to under run q.RunID's terms (0: the scratch run).
	Referrals(ctx context.Context, q Query, limit int, fn func(ReferralBinding) error) error
	// Grants lists grants in id order, filtered by cutoff and beneficiary when set.
	Grants(ctx context.Context, f GrantFilter, fn func(GrantRecord) error) error
	// GrantTotals sums grants per program as of a cutoff.
	GrantTotals(ctx context.Context, asOf time.Time) (map[reconcile.Program]GrantTotal, error)
	// PayoutTotals sums grants per payout (credits, cash) as of a cutoff.
	PayoutTotals(ctx context.Context, asOf time.Time) (map[string]GrantTotal, error)
	// LedgerSummary reads what the summary page shows of the ledger (see jobs/summary.go).
	LedgerSummary(ctx context.Context, q LedgerQuery) (LedgerSummary, error)
}

// AggregateInput says what a run aggregates: usage before the usage cutoff (AsOf less the
// holding period), under Terms, less the rows rejected by the rules of SPEC 3.4.
type AggregateInput struct {
	AsOf  time.Time
	Terms reconcile.Terms
	// Latest is the latest believable occurred_at: the run's wall clock plus the allowed skew.
	Latest time.Time
	// MaxAmount is the largest believable |amount_usd| of one usage row.
	MaxAmount decimal.Decimal

	// LateMargin bounds how long before a run's snapshot a row it could not see may have been
	// stamped (ingested_at): the next run looks for late rows ingested since then.
	LateMargin time.Duration

	// Shard limits the aggregates to its accounts; anomalies are found among every row.
	Shard Shard
}

// UsageCutoff is the cutoff of the usage a run counts: AsOf less the terms' holding period
// (days of 24 hours).
func (in AggregateInput) UsageCutoff() time.Time {
	return in.AsOf.Add(-time.Duration(in.Terms.HoldingDays) * 24 * time.Hour)
}

// aggregateKey is what two runs' aggregates must share for one to extend the other: the same
// amount limit and the same terms, version for version (any change of terms reads the whole
// history once).
type aggregateKey struct {
	MaxAmount   decimal.Decimal `json:"max_event_amount"`
	HoldingDays int             `json:"holding_days"`
	Versions    []string        `json:"terms_versions"`
}

// Key returns what a run records of its input, to be compared with the next run's.
func (in AggregateInput) Key() any {
	k := aggregateKey{MaxAmount: in.MaxAmount, HoldingDays: in.Terms.HoldingDays, Versions: []string{}}
	for _, v := range in.Terms.Records() {
		k.Versions = append(k.Versions, string(v.Program)+"/"+v.ID+"/"+v.SHA256)
	}
	return k
}

// BaseRun is a committed run an incremental run can extend: its aggregates count every usage row
// before AsOf that was visible to it, and of the rows ingested since SeenSince it recorded which
// it saw (rows ingested earlier were all visible to it).
type BaseRun struct {
	ID               int64     `db:"id"`
	AsOf             time.Time `db:"as_of"`
	UsageCutoff      time.Time `db:"usage_cutoff"` // AsOf less the holding period of its terms
	StartedAt        time.Time `db:"started_at"`
	SeenSince        time.Time `db:"seen_since"`
	ConsideredBefore int64     `db:"considered_before"`
	Fingerprint      string    `db:"fingerprint"`
	AggregateInput   []byte    `db:"aggregate_input"`
	ShardIndex       *int      `db:"shard_index"`
	ShardCount       *int      `db:"shard_count"`
}

// Shard returns the shard whose accounts the base aggregated.
func (b BaseRun) Shard() Shard { return shardOf(b.ShardIndex, b.ShardCount) }

// Aggregates says how a run's aggregates were made.
type Aggregates struct {
	Mode             string // "full" or "incremental"
	BaseRunID        int64  // incremental: the run extended
	FullBecause      string // full although a base was offered: why it could not be extended
	DeltaRows        int64  // incremental: usage rows read before the cutoff
	Fingerprint      string
	Considered       int64 // usage rows considered (before the cutoff, and future-dated ones)
	ConsideredBefore int64 // of which before the cutoff
	Anomalies        int64
}

// Query selects the accounts of a run as of its cutoff (of the runs in Runs, when set: a
// report set), of one shard when Shard is set, for one beneficiary when Beneficiary is set.
type Query struct {
	RunID       int64
	Runs        []int64
	AsOf        time.Time
	Shard       Shard
	Beneficiary string
}

// ReportSet is what the reports of a cutoff render from: the newest run of the cutoff that
// committed its grants or, when that run is a shard of N, the newest committed run of each of
// the N shards since the cutoff's last unsharded run.
type ReportSet struct {
	Runs      []RunRecord // in shard order
	Anomalies int64       // usage rows the runs excluded, each counted once
}

// IDs returns the ids of the set's runs.
func (s *ReportSet) IDs() []int64 {
	ids := make([]int64, len(s.Runs))
	for i, r := range s.Runs {
		ids[i] = r.ID
	}
	return ids
}

// Latest returns the set's newest run.
func (s *ReportSet) Latest() RunRecord {
	latest := s.Runs[0]
	for _, r := range s.Runs[1:] {
		if r.ID > latest.ID {
			latest = r
		}
	}
	return latest
}

// Anomaly is a usage row excluded from earnings, with the reason.
type Anomaly struct {
	UsageEventID int64      `db:"id"`
	Reason       string     `db:"reason"`
	UserID       string     `db:"user_id"`
	Product      string     `db:"product"`
	TemplateID   string     `db:"template_id"`
	AmountUSD    string     `db:"amount_usd"`
	OccurredAt   *time.Time `db:"occurred_at"` // nil when the database holds infinity
}

// ReferralBinding is a referral and the terms versions it binds to (SPEC 7.2).
type ReferralBinding struct {
	ReferredUserID string    `db:"referred_user_id"`
	ReferrerID     string    `db:"referrer_id"`
	ReferredAt     time.Time `db:"referred_at"`
	SelfReferral   bool      `db:"self_referral"`
	// The Referral Program version ("" none), whether it is enabled, counts the referred user as
	// a new account, and when its window ends (nil: lifetime, or no version).
	TermsID    string     `db:"terms_id"`
	Enabled    bool       `db:"enabled"`
	NewAccount bool       `db:"new_account"`
	WindowEnd  *time.Time `db:"window_end"`
	// The same for the Serverless Referral Program.
	ServerlessTermsID    string     `db:"serverless_terms_id"`
	ServerlessEnabled    bool       `db:"serverless_enabled"`
	ServerlessNewAccount bool       `db:"serverless_new_account"`
	ServerlessWindowEnd  *time.Time `db:"serverless_window_end"`
}

// GrantFilter selects grants; zero fields select everything.
type GrantFilter struct {
	AsOf        time.Time
	Beneficiary string
}

// GrantRecord is a row of credit_grants.
type GrantRecord struct {
	ID             int64           `db:"id"`
	IdempotencyKey string          `db:"idempotency_key"`
	Program        string          `db:"program"`
	AccountID      string          `db:"account_id"`
	Role           string          `db:"role"`
	BeneficiaryID  string          `db:"beneficiary_id"`
	TemplateID     string          `db:"template_id"`
	ReferredUserID string          `db:"referred_user_id"`
	TermsID        string          `db:"terms_id"`
	Amount         decimal.Decimal `db:"amount_usd"`
	GrantedBefore  decimal.Decimal `db:"granted_before_usd"`
	Spend          decimal.Decimal `db:"spend_usd"`
	Earned         decimal.Decimal `db:"earned_usd"`
	AsOf           time.Time       `db:"as_of"`
	RunID          int64           `db:"run_id"`
	CreatedAt      time.Time       `db:"created_at"`
	Payout         string          `db:"payout"`     // credits or cash
	BonusKind      string          `db:"bonus_kind"` // signup bonus: fixed or draw
	DrawU          *string         `db:"draw_u"`     // a drawn bonus's u, exact
	DrawEntry      *int            `db:"draw_entry"` // a drawn bonus's entry in its version's table
}

// GrantTotal sums a program's grants as of a cutoff.
type GrantTotal struct {
	GrantsAsOf    int64
	GrantedAsOf   decimal.Decimal // grants with as_of = the cutoff
	GrantedToDate decimal.Decimal // grants with as_of <= the cutoff
}

// Acceptance records that an operator accepted a referrer into the Referral Program.
type Acceptance struct {
	ReferrerID string    `db:"referrer_id"`
	AcceptedAt time.Time `db:"accepted_at"`
	AcceptedBy string    `db:"accepted_by"`
	Note       string    `db:"note"`
}

// Enrollment records that an operator moved a referrer to a partner tier from a date (SPEC 8.2).
type Enrollment struct {
	ReferrerID string    `db:"referrer_id"`
	Tier       string    `db:"tier"`
	From       time.Time `db:"enrolled_from"`
	EnrolledAt time.Time `db:"enrolled_at"`
	EnrolledBy string    `db:"enrolled_by"`
	Note       string    `db:"note"`
}

// Run statuses in the ledger.
const (
	StatusRunning   = "running"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusAbandoned = "abandoned"
)

// RunRecord is a row of the run ledger.
type RunRecord struct {
	ID         int64           `db:"id"`
	Kind       string          `db:"kind"`
	AsOf       time.Time       `db:"as_of"`
	Status     string          `db:"status"`
	StartedAt  time.Time       `db:"started_at"`
	FinishedAt *time.Time      `db:"finished_at"`
	Host       string          `db:"host"`
	Version    string          `db:"version"`
	Parameters json.RawMessage `db:"parameters"`
	Terms      json.RawMessage `db:"terms"` // a TermsRecord; nil for runs from before terms
	// AllowRetroactive: the run was allowed terms that re-price usage already counted.
	AllowRetroactive bool `db:"allow_retroactive"`
	// DrawSecretSHA256 is the SHA-256 of the draw secret the run used ("": none), never the secret.
	DrawSecretSHA256 string           `db:"draw_secret_sha256"`
	UsageRows        *int64           `db:"usage_rows"`
	Anomalies        *int64           `db:"anomalies"`
	GrantsWritten    *int64           `db:"grants_written"`
	AmountGranted    *decimal.Decimal `db:"amount_granted"`
	Totals           []byte           `db:"totals"`
	Error            *string          `db:"error"`
	ShardIndex       *int             `db:"shard_index"`
	ShardCount       *int             `db:"shard_count"`
}

// Shard returns the shard the run processed.
func (r RunRecord) Shard() Shard { return shardOf(r.ShardIndex, r.ShardCount) }

// CashGranted is the part of the run's grants paid in cash, from its recorded totals (zero for a
// run that recorded none).
func (r RunRecord) CashGranted() decimal.Decimal {
	var programs map[string]struct {
		Cash decimal.Decimal `json:"cash_usd"`
	}
	var cash decimal.Decimal
	if json.Unmarshal(r.Totals, &programs) == nil {
		for _, p := range programs {
			cash = cash.Add(p.Cash)
		}
	}
	return cash
}

// TermsLabel names the run's terms in a word: the first 12 hex digits of its terms file's
// SHA-256, "built-in" for the built-in terms, "-" for a run from before terms; "+retroactive"
// when the run was allowed to re-price counted usage.
func (r RunRecord) TermsLabel() string {
	label := "-"
	var rec TermsRecord
	if len(r.Terms) > 0 && json.Unmarshal(r.Terms, &rec) == nil {
		label = "built-in"
		if rec.FileSHA256 != "" {
			label = rec.FileSHA256[:min(12, len(rec.FileSHA256))]
		}
	}
	if r.AllowRetroactive {
		label += "+retroactive"
	}
	return label
}
