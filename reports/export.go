package reports

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/shopspring/decimal"
)

// Source streams the rows of each report, already in their final order, calling fn once
// per row. It stops and returns fn's error when fn fails.
type Source interface {
	// Grants streams the grants with as_of = cutoff.
	Grants(ctx context.Context, fn func(GrantRow) error) error
	// Referrers streams every referrer's Referral Program account.
	Referrers(ctx context.Context, fn func(ReferrerRow) error) error
	// Templates streams every template's Template Program account.
	Templates(ctx context.Context, fn func(TemplateRow) error) error
	// ServerlessReferrals streams the referrals that reached the serverless threshold.
	ServerlessReferrals(ctx context.Context, fn func(ServerlessRow) error) error
	// SignupBonuses streams each role's bonus of the referrals bound to a signup bonus version.
	SignupBonuses(ctx context.Context, fn func(SignupBonusRow) error) error
	// Payouts streams the grants paid in cash with as_of = cutoff.
	Payouts(ctx context.Context, fn func(PayoutRow) error) error
	// Anomalies streams the usage rows excluded from earnings.
	Anomalies(ctx context.Context, fn func(AnomalyRow) error) error
}

// Program names: the keys of ManifestInfo.ControlTotals and the values of GrantRow.Program.
const (
	programReferral   = "referral"
	programTemplate   = "template"
	programServerless = "serverless_referral"
	programSignup     = "signup_bonus"
)

// Payouts: the keys of Manifest.PayoutTotals.
const (
	payoutCredits = "credits"
	payoutCash    = "cash"
)

// PayoutTotals are the grants of one payout (credits or cash) as of a cutoff, all programs.
type PayoutTotals struct {
	GrantsAsOf       int64           `json:"grants_as_of"`
	GrantedAsOfUSD   decimal.Decimal `json:"granted_as_of_usd"`
	GrantedToDateUSD decimal.Decimal `json:"granted_to_date_usd"`
}

// MarshalJSON renders the amounts as JSON strings with two decimals.
func (t PayoutTotals) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		GrantsAsOf       int64  `json:"grants_as_of"`
		GrantedAsOfUSD   string `json:"granted_as_of_usd"`
		GrantedToDateUSD string `json:"granted_to_date_usd"`
	}{t.GrantsAsOf, t.GrantedAsOfUSD.StringFixed(2), t.GrantedToDateUSD.StringFixed(2)})
}

// ProgramTotals are one program's control totals, computed by the caller from the database
// independently of the rows a Source streams.
type ProgramTotals struct {
	UsageRows          int64           `json:"usage_rows"`
	UsageConsideredUSD decimal.Decimal `json:"usage_considered_usd"`
	EarnedUSD          decimal.Decimal `json:"earned_usd"`
	GrantedAsOfUSD     decimal.Decimal `json:"granted_as_of_usd"`   // grants with as_of = cutoff
	GrantedToDateUSD   decimal.Decimal `json:"granted_to_date_usd"` // grants with as_of <= cutoff
}

// MarshalJSON renders the amounts as JSON strings, exact amounts in their shortest form and
// granted amounts with two decimals, whatever decimal.MarshalJSONWithoutQuotes says.
func (t ProgramTotals) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		UsageRows          int64  `json:"usage_rows"`
		UsageConsideredUSD string `json:"usage_considered_usd"`
		EarnedUSD          string `json:"earned_usd"`
		GrantedAsOfUSD     string `json:"granted_as_of_usd"`
		GrantedToDateUSD   string `json:"granted_to_date_usd"`
	}{
		UsageRows:          t.UsageRows,
		UsageConsideredUSD: t.UsageConsideredUSD.String(),
		EarnedUSD:          t.EarnedUSD.String(),
		GrantedAsOfUSD:     t.GrantedAsOfUSD.StringFixed(2),
		GrantedToDateUSD:   t.GrantedToDateUSD.StringFixed(2),
	})
}

// ManifestInfo is what the caller knows about a report set before its rows are streamed.
type ManifestInfo struct {
	RunID        int64
	ShardRunIDs  []int64         // a sharded night: every shard's run, in shard order
	AsOf         time.Time       // the cutoff
	BusinessDate string          // YYYY-MM-DD, the day before the cutoff
	Parameters   json.RawMessage // the program parameters the run used
	Terms        json.RawMessage // the terms the run used: file SHA-256, versions and their hashes
	Version      string          // the binary's version
	// ControlTotals maps "referral", "template", "serverless_referral" and "signup_bonus" to
	// their totals; a missing program counts as all zeros.
	ControlTotals map[string]ProgramTotals
	// PayoutTotals maps "credits" and "cash" to their grants, summed by the database; a missing
	// payout counts as zeros.
	PayoutTotals map[string]PayoutTotals
	// Totals, when set, is called after the CSVs are written and its result replaces
	// ControlTotals: for a caller that learns usage and earnings while streaming the rows, and
	// reads the granted totals from the database independently.
	Totals       func(ctx context.Context) (map[string]ProgramTotals, error)
	AnomalyCount int64
	// Summary, when set, is called after the CSVs are written and tied out: Export then renders
	// summary.html from it, the manifest and the rows, and the manifest gains its Liability.
	Summary func(ctx context.Context) (Summary, error)
}

// Manifest is the content of manifest.json.
type Manifest struct {
	RunID         int64                    `json:"run_id"`
	ShardRunIDs   []int64                  `json:"shard_run_ids,omitempty"`
	AsOf          time.Time                `json:"as_of"`
	BusinessDate  string                   `json:"business_date"`
	Version       string                   `json:"version"`
	Parameters    json.RawMessage          `json:"parameters"`
	Terms         json.RawMessage          `json:"terms,omitempty"`
	ControlTotals map[string]ProgramTotals `json:"control_totals"`
	PayoutTotals  map[string]PayoutTotals  `json:"payout_totals"`
	Liability     map[string]Liability     `json:"liability,omitempty"` // with a summary
	Anomalies     int64                    `json:"anomalies"`
	Files         []File                   `json:"files"`
}

// File describes one file of a report set: a CSV file, or summary.html.
type File struct {
	Key    string `json:"key"`    // relative to the REPORTS_URL, e.g. dt=2026-02-01/grants.csv
	Rows   int64  `json:"rows"`   // CSV records excluding the header row; 0 for summary.html
	Bytes  int64  `json:"bytes"`  // size of the file
	SHA256 string `json:"sha256"` // hex SHA-256 of the file
}

// TieOutError reports a CSV column whose sum differs from the database's control total.
type TieOutError struct {
	Program  string // empty for anomalies.csv
	File     string
	Column   string // "rows" for a row count
	CSV      decimal.Decimal
	Database decimal.Decimal
}

// Error says which file and column disagree with which total, and both amounts.
func (e *TieOutError) Error() string {
	what := "the database total"
	if e.Program != "" {
		what = "the database total for program " + e.Program
	}
	return fmt.Sprintf("tie-out failed: %s %s sums to %s but %s is %s",
		e.File, e.Column, e.CSV, what, e.Database)
}

const manifestName = "manifest.json"

// Prefix returns the key prefix of a business date's report set, "dt=YYYY-MM-DD/".
func Prefix(businessDate string) string { return "dt=" + businessDate + "/" }

// Export writes the report set of m.BusinessDate to sink: grants.csv, referrers.csv,
// templates.csv, serverless_referrals.csv and anomalies.csv under Prefix(m.BusinessDate),
// each streamed from src, then summary.html when m.Summary is set, then manifest.json last, so
// its presence means the set is complete. Before writing it removes the set's previous manifest.
// When the CSV sums do not equal m.ControlTotals it returns a *TieOutError and writes no
// manifest (summary.html, when set, says the set does not tie out). Other errors come from
// src, from sink, from m.Summary, or from an amount in a whole-cents column that has a fraction
// of a cent; they leave no manifest either. Given the same rows and m, the files are
// byte-identical.
func Export(ctx context.Context, sink Sink, m ManifestInfo, src Source) (Manifest, error) {
	if _, err := time.Parse(time.DateOnly, m.BusinessDate); err != nil {
		return Manifest{}, fmt.Errorf("export: business date %q is not YYYY-MM-DD", m.BusinessDate)
	}
	if len(m.Parameters) > 0 && !json.Valid(m.Parameters) {
		return Manifest{}, fmt.Errorf("export dt=%s: parameters are not valid JSON", m.BusinessDate)
	}
	if len(m.Terms) > 0 && !json.Valid(m.Terms) {
		return Manifest{}, fmt.Errorf("export dt=%s: terms are not valid JSON", m.BusinessDate)
	}
	dir := Prefix(m.BusinessDate)
	// An old manifest would vouch for a mix of old and new files if this export failed.
	if err := sink.Remove(ctx, dir+manifestName); err != nil {
		return Manifest{}, fmt.Errorf("export dt=%s: remove previous manifest: %w", m.BusinessDate, err)
	}

	totals := map[string]ProgramTotals{programReferral: {}, programTemplate: {}, programServerless: {}, programSignup: {}}
	maps.Copy(totals, m.ControlTotals)
	payouts := map[string]PayoutTotals{payoutCredits: {}, payoutCash: {}}
	maps.Copy(payouts, m.PayoutTotals)
	var sum sums
	var seen tally
	steps := []struct {
		name  string
		write func(key string) (File, error)
	}{
		{"grants.csv", func(key string) (File, error) {
			return writeCSV(ctx, sink, key, src.Grants, func(r GrantRow) { sum.grant(r); seen.grant(r) })
		}},
		{"referrers.csv", func(key string) (File, error) {
			return writeCSV(ctx, sink, key, src.Referrers, func(r ReferrerRow) {
				sum.referrers = sum.referrers.Add(r.GrantedUSD)
			})
		}},
		{"templates.csv", func(key string) (File, error) {
			return writeCSV(ctx, sink, key, src.Templates, func(r TemplateRow) {
				sum.templates = sum.templates.Add(r.GrantedUSD)
			})
		}},
		{"serverless_referrals.csv", func(key string) (File, error) {
			return writeCSV(ctx, sink, key, src.ServerlessReferrals, func(r ServerlessRow) {
				sum.serverless = sum.serverless.Add(r.GrantedUSD)
			})
		}},
		{"signup_bonuses.csv", func(key string) (File, error) {
			return writeCSV(ctx, sink, key, src.SignupBonuses, func(r SignupBonusRow) {
				sum.signup = sum.signup.Add(r.GrantedUSD)
			})
		}},
		{"payouts.csv", func(key string) (File, error) {
			return writeCSV(ctx, sink, key, src.Payouts, func(r PayoutRow) {
				sum.cash = sum.cash.Add(r.AmountUSD)
			})
		}},
		{"anomalies.csv", func(key string) (File, error) {
			return writeCSV(ctx, sink, key, src.Anomalies, seen.anomaly)
		}},
	}
	man := Manifest{
		RunID:         m.RunID,
		ShardRunIDs:   m.ShardRunIDs,
		AsOf:          m.AsOf.UTC(),
		BusinessDate:  m.BusinessDate,
		Version:       m.Version,
		Parameters:    m.Parameters,
		Terms:         m.Terms,
		ControlTotals: totals,
		PayoutTotals:  payouts,
		Anomalies:     m.AnomalyCount,
	}
	for _, s := range steps {
		f, err := s.write(dir + s.name)
		if err != nil {
			return Manifest{}, fmt.Errorf("export %s: %w", dir+s.name, err)
		}
		man.Files = append(man.Files, f)
	}
	if m.Totals != nil {
		late, err := m.Totals(ctx)
		if err != nil {
			return Manifest{}, fmt.Errorf("export dt=%s: control totals: %w", m.BusinessDate, err)
		}
		maps.Copy(totals, late)
	}
	tie := sum.tieOut(totals, payouts, man.Files[len(man.Files)-1].Rows, m.AnomalyCount)
	if m.Summary != nil {
		f, err := writeSummary(ctx, sink, dir+summaryName, m, &man, seen, tie)
		if err != nil {
			return Manifest{}, fmt.Errorf("export %s: %w", dir+summaryName, err)
		}
		man.Files = append(man.Files, f)
	}
	if tie != nil {
		return Manifest{}, fmt.Errorf("export dt=%s: %w", m.BusinessDate, tie)
	}

	body, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return Manifest{}, fmt.Errorf("export dt=%s: encode manifest: %w", m.BusinessDate, err)
	}
	if err := put(ctx, sink, dir+manifestName, append(body, '\n')); err != nil {
		return Manifest{}, fmt.Errorf("export %s: %w", dir+manifestName, err)
	}
	return man, nil
}

// ReadManifest reads the manifest of a business date's report set. When the set is missing
// or incomplete the error wraps fs.ErrNotExist.
func ReadManifest(ctx context.Context, sink Sink, businessDate string) (Manifest, error) {
	key := Prefix(businessDate) + manifestName
	rc, err := sink.Open(ctx, key)
	if err != nil {
		return Manifest{}, err
	}
	defer rc.Close()
	var man Manifest
	if err := json.NewDecoder(rc).Decode(&man); err != nil {
		return Manifest{}, fmt.Errorf("read %s: %w", key, err)
	}
	return man, nil
}

// sums accumulates the CSV columns that tie out to the control totals.
type sums struct {
	grantedAsOf                              map[string]decimal.Decimal // grants.csv amount_usd by program
	referrers, templates, serverless, signup decimal.Decimal            // granted_usd
	cash                                     decimal.Decimal            // payouts.csv amount_usd
}

func (s *sums) grant(r GrantRow) {
	if s.grantedAsOf == nil {
		s.grantedAsOf = map[string]decimal.Decimal{}
	}
	s.grantedAsOf[r.Program] = s.grantedAsOf[r.Program].Add(r.AmountUSD)
}

// tieOut returns a *TieOutError for the first sum, in a fixed order, that differs from its
// control total.
func (s *sums) tieOut(totals map[string]ProgramTotals, payouts map[string]PayoutTotals, anomalyRows, anomalyCount int64) error {
	// Programs in grants.csv that have no control total must fail too, hence the union.
	programs := slices.Collect(maps.Keys(totals))
	for p := range s.grantedAsOf {
		if _, ok := totals[p]; !ok {
			programs = append(programs, p)
		}
	}
	slices.Sort(programs)
	for _, p := range programs {
		if got, want := s.grantedAsOf[p], totals[p].GrantedAsOfUSD; !got.Equal(want) {
			return &TieOutError{Program: p, File: "grants.csv", Column: "amount_usd", CSV: got, Database: want}
		}
	}
	toDate := []struct {
		program, file string
		sum           decimal.Decimal
	}{
		{programReferral, "referrers.csv", s.referrers},
		{programTemplate, "templates.csv", s.templates},
		{programServerless, "serverless_referrals.csv", s.serverless},
		{programSignup, "signup_bonuses.csv", s.signup},
	}
	for _, c := range toDate {
		if want := totals[c.program].GrantedToDateUSD; !c.sum.Equal(want) {
			return &TieOutError{Program: c.program, File: c.file, Column: "granted_usd", CSV: c.sum, Database: want}
		}
	}
	if want := payouts[payoutCash].GrantedAsOfUSD; !s.cash.Equal(want) {
		return &TieOutError{File: "payouts.csv", Column: "amount_usd", CSV: s.cash, Database: want}
	}
	var byPayout decimal.Decimal
	for _, p := range payouts {
		byPayout = byPayout.Add(p.GrantedAsOfUSD)
	}
	var byProgram decimal.Decimal
	for _, t := range totals {
		byProgram = byProgram.Add(t.GrantedAsOfUSD)
	}
	if !byPayout.Equal(byProgram) {
		return &TieOutError{File: "manifest.json", Column: "payout_totals.granted_as_of_usd", CSV: byPayout, Database: byProgram}
	}
	if anomalyRows != anomalyCount {
		return &TieOutError{File: "anomalies.csv", Column: "rows",
			CSV: decimal.NewFromInt(anomalyRows), Database: decimal.NewFromInt(anomalyCount)}
	}
	return nil
}

// writeCSV streams the rows of one report into a new object at key, passing each row to
// observe, and counts rows, bytes and the SHA-256 on the way.
func writeCSV[R Row](ctx context.Context, sink Sink, key string,
	rows func(context.Context, func(R) error) error, observe func(R)) (_ File, err error) {
	obj, err := sink.Create(ctx, key)
	if err != nil {
		return File{}, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, obj.Abort())
		}
	}()
	h := sha256.New()
	var size byteCounter
	enc := NewEncoder[R](io.MultiWriter(obj, h, &size))
	var n int64
	var encErr error
	err = rows(ctx, func(r R) error {
		if encErr = enc.Encode(r); encErr != nil {
			return encErr
		}
		observe(r)
		n++
		return nil
	})
	switch {
	case encErr != nil:
		return File{}, fmt.Errorf("write row %d: %w", n+1, encErr)
	case err != nil:
		return File{}, fmt.Errorf("read rows: %w", err)
	}
	if err := enc.Flush(); err != nil {
		return File{}, fmt.Errorf("write: %w", err)
	}
	// A cancelled run must not commit a file its source may have cut short.
	if err := ctx.Err(); err != nil {
		return File{}, err
	}
	if err := obj.Commit(); err != nil {
		return File{}, err
	}
	return File{Key: key, Rows: n, Bytes: int64(size), SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// put writes a small object in one go.
func put(ctx context.Context, sink Sink, key string, body []byte) error {
	obj, err := sink.Create(ctx, key)
	if err != nil {
		return err
	}
	if _, err := obj.Write(body); err != nil {
		return errors.Join(err, obj.Abort())
	}
	return obj.Commit()
}

type byteCounter int64

func (c *byteCounter) Write(p []byte) (int, error) {
	*c += byteCounter(len(p))
	return len(p), nil
}
