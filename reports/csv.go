package reports

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/shopspring/decimal"
)

// GrantRow is one line of grants.csv: a credit grant written as of the report's cutoff.
type GrantRow struct {
	GrantID          int64
	Program          string
	TermsID          string
	BeneficiaryID    string
	AmountUSD        decimal.Decimal // whole cents
	AsOf             time.Time
	IdempotencyKey   string
	AccountID        string
	TemplateID       string          // template program only
	ReferredUserID   string          // serverless_referral program only
	Role             string          // serverless_referral program only: referrer or referred
	GrantedBeforeUSD decimal.Decimal // whole cents
	EarnedUSD        decimal.Decimal // exact
	RunID            int64
	CreatedAt        time.Time
}

// ReferrerRow is one line of referrers.csv: a referrer's Referral Program account at the cutoff.
type ReferrerRow struct {
	ReferrerID       string
	TermsID          string // the version of the account: a referrer has one row per version
	Referrals        int64
	NotNewReferrals  int64           // referrals bound to the version and excluded as not new accounts
	ReferralSpendUSD decimal.Decimal // exact
	EarnedUSD        decimal.Decimal // exact
	TargetUSD        decimal.Decimal // whole cents
	GrantedUSD       decimal.Decimal // whole cents, grants with as_of <= cutoff
	ClawbackDueUSD   decimal.Decimal // whole cents
	Accepted         bool
	Status           string
	StatusReason     string
}

// TemplateRow is one line of templates.csv: a template's Template Program account at the cutoff.
type TemplateRow struct {
	TemplateID       string
	TermsID          string
	CreatorID        string
	RuntimeSeconds   int64
	TemplateSpendUSD decimal.Decimal // exact
	EarnedUSD        decimal.Decimal // exact
	TargetUSD        decimal.Decimal // whole cents
	GrantedUSD       decimal.Decimal // whole cents, grants with as_of <= cutoff
	ClawbackDueUSD   decimal.Decimal // whole cents
	Status           string
	StatusReason     string
}

// ServerlessRow is one line of serverless_referrals.csv: a referral that reached the
// Serverless Referral Program threshold.
type ServerlessRow struct {
	ReferredUserID     string
	TermsID            string
	ReferrerID         string
	ServerlessSpendUSD decimal.Decimal // exact
	GrantedUSD         decimal.Decimal // whole cents: ReferrerGrantedUSD + ReferredGrantedUSD
	ReferrerGrantedUSD decimal.Decimal // whole cents
	ReferredGrantedUSD decimal.Decimal // whole cents
	Status             string
}

// SignupBonusRow is one line of signup_bonuses.csv: one role's bonus of a referral bound to a
// signup bonus version (SPEC 8.1), as of the cutoff.
type SignupBonusRow struct {
	ReferredUserID string
	ReferrerID     string
	TermsID        string
	Role           string // referrer or referred
	BeneficiaryID  string
	LoadsUSD       decimal.Decimal // exact
	Reached        bool
	Country        string          // upper-cased; empty when unknown
	Kind           string          // fixed or draw
	U              string          // the draw's u, exact; empty for fixed
	DrawEntry      string          // the draw's entry (0-based) in the version's table; empty for fixed
	AmountUSD      decimal.Decimal // whole cents: the bonus this recipient is (or was) owed; 0 while pending
	GrantedUSD     decimal.Decimal // whole cents, grants with as_of <= cutoff
	Payout         string
	Status         string
}

// PayoutRow is one line of payouts.csv: a grant paid in cash (SPEC 8.2), as of the cutoff, for
// finance to pay.
type PayoutRow struct {
	GrantID        int64
	Program        string
	BeneficiaryID  string
	TermsID        string
	AmountUSD      decimal.Decimal // whole cents
	AsOf           time.Time
	IdempotencyKey string
}

// AnomalyRow is one line of anomalies.csv: a usage row excluded from earnings.
type AnomalyRow struct {
	UsageEventID int64
	Reason       string
	UserID       string
	Product      string
	TemplateID   string    // empty when the usage row has none
	AmountUSD    string    // the database's text of the numeric, e.g. "NaN"
	OccurredAt   time.Time // zero when the database holds infinity
}

// Row is the set of report row types an Encoder accepts: GrantRow, ReferrerRow,
// TemplateRow, ServerlessRow, SignupBonusRow, PayoutRow and AnomalyRow.
type Row interface {
	header() []string
	appendRecord(dst []string) ([]string, error)
}

var (
	grantColumns = []string{"grant_id", "program", "terms_id", "beneficiary_id", "amount_usd", "as_of",
		"idempotency_key", "account_id", "template_id", "referred_user_id", "role",
		"granted_before_usd", "earned_usd", "run_id", "created_at"}
	referrerColumns = []string{"referrer_id", "terms_id", "referrals", "referral_spend_usd", "earned_usd",
		"target_usd", "granted_usd", "clawback_due_usd", "accepted", "status", "status_reason", "not_new_referrals"}
	templateColumns = []string{"template_id", "terms_id", "creator_id", "runtime_seconds", "template_spend_usd",
		"earned_usd", "target_usd", "granted_usd", "clawback_due_usd", "status", "status_reason"}
	serverlessColumns = []string{"referred_user_id", "terms_id", "referrer_id", "serverless_spend_usd",
		"granted_usd", "referrer_granted_usd", "referred_granted_usd", "status"}
	signupColumns = []string{"referred_user_id", "referrer_id", "terms_id", "role", "beneficiary_id", "loads_usd",
		"reached", "country", "kind", "u", "draw_entry", "amount_usd", "granted_usd", "payout", "status"}
	payoutColumns  = []string{"grant_id", "beneficiary_id", "terms_id", "amount_usd", "as_of", "idempotency_key", "program"}
	anomalyColumns = []string{"usage_event_id", "reason", "user_id", "product", "template_id",
		"amount_usd", "occurred_at"}
)

func (GrantRow) header() []string       { return grantColumns }
func (ReferrerRow) header() []string    { return referrerColumns }
func (TemplateRow) header() []string    { return templateColumns }
func (ServerlessRow) header() []string  { return serverlessColumns }
func (AnomalyRow) header() []string     { return anomalyColumns }
func (SignupBonusRow) header() []string { return signupColumns }
func (PayoutRow) header() []string      { return payoutColumns }

func (r SignupBonusRow) appendRecord(dst []string) ([]string, error) {
	var c centsFormat
	// u is the exact text of a number in [0, 1): like the money columns, it is not neutralised.
	dst = append(dst, text(r.ReferredUserID), text(r.ReferrerID), text(r.TermsID), text(r.Role), text(r.BeneficiaryID),
		r.LoadsUSD.String(), strconv.FormatBool(r.Reached), text(r.Country), text(r.Kind), r.U, r.DrawEntry,
		c.format("amount_usd", r.AmountUSD), c.format("granted_usd", r.GrantedUSD), text(r.Payout), text(r.Status))
	return dst, c.err
}

func (r PayoutRow) appendRecord(dst []string) ([]string, error) {
	var c centsFormat
	dst = append(dst, integer(r.GrantID), text(r.BeneficiaryID), text(r.TermsID), c.format("amount_usd", r.AmountUSD),
		timestamp(r.AsOf), text(r.IdempotencyKey), text(r.Program))
	return dst, c.err
}

func (r GrantRow) appendRecord(dst []string) ([]string, error) {
	var c centsFormat
	dst = append(dst, integer(r.GrantID), text(r.Program), text(r.TermsID), text(r.BeneficiaryID),
		c.format("amount_usd", r.AmountUSD), timestamp(r.AsOf), text(r.IdempotencyKey),
		text(r.AccountID), text(r.TemplateID), text(r.ReferredUserID), text(r.Role),
		c.format("granted_before_usd", r.GrantedBeforeUSD), r.EarnedUSD.String(),
		integer(r.RunID), timestamp(r.CreatedAt))
	return dst, c.err
}

func (r ReferrerRow) appendRecord(dst []string) ([]string, error) {
	var c centsFormat
	dst = append(dst, text(r.ReferrerID), text(r.TermsID), integer(r.Referrals), r.ReferralSpendUSD.String(),
		r.EarnedUSD.String(), c.format("target_usd", r.TargetUSD),
		c.format("granted_usd", r.GrantedUSD), c.format("clawback_due_usd", r.ClawbackDueUSD),
		strconv.FormatBool(r.Accepted), text(r.Status), text(r.StatusReason), integer(r.NotNewReferrals))
	return dst, c.err
}

func (r TemplateRow) appendRecord(dst []string) ([]string, error) {
	var c centsFormat
	dst = append(dst, text(r.TemplateID), text(r.TermsID), text(r.CreatorID), integer(r.RuntimeSeconds),
		r.TemplateSpendUSD.String(), r.EarnedUSD.String(), c.format("target_usd", r.TargetUSD),
		c.format("granted_usd", r.GrantedUSD), c.format("clawback_due_usd", r.ClawbackDueUSD),
		text(r.Status), text(r.StatusReason))
	return dst, c.err
}

func (r ServerlessRow) appendRecord(dst []string) ([]string, error) {
	var c centsFormat
	dst = append(dst, text(r.ReferredUserID), text(r.TermsID), text(r.ReferrerID), r.ServerlessSpendUSD.String(),
		c.format("granted_usd", r.GrantedUSD),
		c.format("referrer_granted_usd", r.ReferrerGrantedUSD),
		c.format("referred_granted_usd", r.ReferredGrantedUSD), text(r.Status))
	return dst, c.err
}

func (r AnomalyRow) appendRecord(dst []string) ([]string, error) {
	// amount_usd is the database's rendering of a numeric (digits, a sign, a dot or NaN),
	// so like the other money columns it is not neutralised: -3.50 must stay -3.50.
	return append(dst, integer(r.UsageEventID), text(r.Reason), text(r.UserID), text(r.Product),
		text(r.TemplateID), r.AmountUSD, timestamp(r.OccurredAt)), nil
}

// Encoder writes report rows of one type as CSV (RFC 4180: CRLF line ends, fields quoted
// only when needed) after a single header row. It keeps no rows: only a 64 KiB write buffer.
type Encoder[R Row] struct {
	bw     *bufio.Writer
	cw     *csv.Writer
	record []string
	header bool
}

// NewEncoder returns an Encoder that writes to w. Call Flush after the last row.
func NewEncoder[R Row](w io.Writer) *Encoder[R] {
	bw := bufio.NewWriterSize(w, 64<<10)
	// csv.NewWriter reuses bw because it is a *bufio.Writer of at least 4 KiB.
	cw := csv.NewWriter(bw)
	cw.UseCRLF = true
	return &Encoder[R]{bw: bw, cw: cw}
}

// Encode writes one row, preceded by the header row on the first call. It returns an error
// when a whole-cents column holds a fraction of a cent or when the underlying writer fails.
func (e *Encoder[R]) Encode(r R) error {
	if err := e.writeHeader(); err != nil {
		return err
	}
	rec, err := r.appendRecord(e.record[:0])
	if err != nil {
		return err
	}
	e.record = rec
	return e.cw.Write(rec)
}

// Flush writes the header row if no row was encoded and flushes buffered data to the
// underlying writer, returning the first write error.
func (e *Encoder[R]) Flush() error {
	if err := e.writeHeader(); err != nil {
		return err
	}
	e.cw.Flush()
	if err := e.cw.Error(); err != nil {
		return err
	}
	return e.bw.Flush()
}

func (e *Encoder[R]) writeHeader() error {
	if e.header {
		return nil
	}
	e.header = true
	var zero R
	return e.cw.Write(zero.header())
}

// text neutralises a free-text cell that a spreadsheet would run as a formula by prefixing
// a single quote. Cells that already start with a quote get one too, so stripping one leading
// quote from a text cell always recovers the original value.
func text(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r', '\'':
		return "'" + s
	}
	return s
}

func integer(n int64) string { return strconv.FormatInt(n, 10) }

// timestamp renders t in UTC as RFC 3339, with fractional seconds only when present.
// timestamp formats t in RFC 3339, UTC; the zero time (a timestamp the database holds as
// infinity, which no Go time can) is an empty cell.
func timestamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// centsFormat renders whole-cents amounts with exactly two decimals and keeps the first
// error. A fraction of a cent is an error rather than rounded away: the CSV sums must tie out
// to the ledger to the cent.
type centsFormat struct{ err error }

func (c *centsFormat) format(column string, d decimal.Decimal) string {
	if !d.Equal(d.Truncate(2)) && c.err == nil {
		c.err = fmt.Errorf("%s %s is not a whole number of cents", column, d)
	}
	return d.StringFixed(2)
}
