package reports

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Summary is what summary.html shows beyond the manifest and the report rows: the caller's view
// of the ledger and of the accounts as of the cutoff, read in the same snapshot as the rows.
type Summary struct {
	// Days are the business dates of the trend, oldest first (90 days ending at the report's).
	Days []string
	// Daily are the grants per business date, program and payout, for dates in Days.
	Daily []DailyGranted
	// Top are the beneficiaries granted the most as of the cutoff, most first.
	Top []Beneficiary
	// Pipeline are the accounts closest to a threshold, closest first; PipelineAccounts counts
	// every account that qualified for the list.
	Pipeline         []PipelineAccount
	PipelineAccounts int64
	// Liability maps each program to what it owes but has not granted; it goes into the
	// manifest too.
	Liability map[string]Liability
	// Terms are the versions of the terms the run used, in the manifest's order.
	Terms []TermsVersion
}

// PayoutCredits is how the program rows of the page are paid: the page shows each program's
// grants whole, and the split into credits and cash from the manifest's payout totals.
const PayoutCredits = payoutCredits

// DailyGranted is the grants of one business date (the cutoffs that close it), program and
// payout.
type DailyGranted struct {
	Date      string // YYYY-MM-DD
	Program   string
	Payout    string
	Grants    int64
	AmountUSD decimal.Decimal
}

// Beneficiary is a beneficiary's grants as of the cutoff, all programs.
type Beneficiary struct {
	BeneficiaryID    string
	Programs         []string
	Grants           int64
	GrantedToDateUSD decimal.Decimal // grants with as_of <= cutoff
	GrantedAsOfUSD   decimal.Decimal // of which with as_of = cutoff
}

// PipelineAccount is an account not eligible yet, with how close it is to its thresholds.
type PipelineAccount struct {
	Program       string
	TermsID       string
	AccountID     string
	BeneficiaryID string
	// Progress is the least fraction of a threshold reached, from 0 to 1.
	Progress decimal.Decimal
	// DueUSD is what becomes owed when the account is eligible: earned less granted, or the
	// serverless bonuses.
	DueUSD decimal.Decimal
	// Missing says which conditions are unmet (status_reason).
	Missing string
}

// Liability is what a program owes as of the cutoff but has not granted, in whole cents.
type Liability struct {
	// AccruedUSD is earned by accounts not eligible yet (below a threshold, or awaiting
	// acceptance), less what they were granted before.
	AccruedUSD      decimal.Decimal `json:"accrued_usd"`
	AccruedAccounts int64           `json:"accrued_accounts"`
	// WaitingUSD is owed to eligible accounts but under the terms' minimum grant.
	WaitingUSD      decimal.Decimal `json:"waiting_usd"`
	WaitingAccounts int64           `json:"waiting_accounts"`
	// ClawbackDueUSD is granted beyond what refunded earnings support; never taken back.
	ClawbackDueUSD   decimal.Decimal `json:"clawback_due_usd"`
	ClawbackAccounts int64           `json:"clawback_accounts"`
}

// MarshalJSON renders the amounts as JSON strings with two decimals.
func (l Liability) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		AccruedUSD       string `json:"accrued_usd"`
		AccruedAccounts  int64  `json:"accrued_accounts"`
		WaitingUSD       string `json:"waiting_usd"`
		WaitingAccounts  int64  `json:"waiting_accounts"`
		ClawbackDueUSD   string `json:"clawback_due_usd"`
		ClawbackAccounts int64  `json:"clawback_accounts"`
	}{l.AccruedUSD.StringFixed(2), l.AccruedAccounts, l.WaitingUSD.StringFixed(2), l.WaitingAccounts,
		l.ClawbackDueUSD.StringFixed(2), l.ClawbackAccounts})
}

// TermsVersion is a terms version as the summary describes it.
type TermsVersion struct {
	Program string
	ID      string
	From    time.Time // zero: since forever
	Enabled bool
}

const summaryName = "summary.html"

//go:embed summary.html.tmpl
var summaryText string

var summaryTemplate = template.Must(template.New("summary").Funcs(template.FuncMap{
	"usd":     usd,
	"int":     func(n int64) string { return thousands(strconv.FormatInt(n, 10)) },
	"fixed":   func(d decimal.Decimal) string { return d.StringFixed(2) },
	"program": programName,
	"short":   programShort,
	"add":     func(a, b int) int { return a + b },
}).Parse(summaryText))

// tally counts what the summary shows of the rows Export streams.
type tally struct {
	grants  map[string]int64 // grants.csv rows by program
	reasons map[string]int64 // anomalies.csv rows by reason
}

func (t *tally) grant(r GrantRow) {
	if t.grants == nil {
		t.grants = map[string]int64{}
	}
	t.grants[r.Program]++
}

func (t *tally) anomaly(r AnomalyRow) {
	if t.reasons == nil {
		t.reasons = map[string]int64{}
	}
	t.reasons[r.Reason]++
}

// writeSummary renders summary.html from the manifest (which gains the summary's liability),
// the counts of the rows and the caller's Summary, and stores it at key. tie is the tie-out's
// verdict: nil when the CSVs tie out.
func writeSummary(ctx context.Context, sink Sink, key string, m ManifestInfo, man *Manifest, seen tally, tie error) (File, error) {
	s, err := m.Summary(ctx)
	if err != nil {
		return File{}, fmt.Errorf("read the summary: %w", err)
	}
	if len(s.Liability) > 0 {
		man.Liability = s.Liability
	}
	page, err := newSummaryPage(*man, s, seen, tie)
	if err != nil {
		return File{}, err
	}
	var body bytes.Buffer
	if err := summaryTemplate.Execute(&body, page); err != nil {
		return File{}, fmt.Errorf("render: %w", err)
	}
	if err := put(ctx, sink, key, body.Bytes()); err != nil {
		return File{}, err
	}
	sum := sha256.Sum256(body.Bytes())
	return File{Key: key, Bytes: int64(body.Len()), SHA256: hex.EncodeToString(sum[:])}, nil
}

// summaryPage is what the template renders. Every figure that is also in the manifest is
// taken from the manifest and named by its JSON path (data-figure), so a test can compare them.
type summaryPage struct {
	Man            Manifest
	AsOf           string
	TiesOut        bool
	TieOutProblem  string
	Programs       []programRow
	GrantsTonight  int64
	GrantedTonight decimal.Decimal
	GrantedToDate  decimal.Decimal
	Owed           decimal.Decimal // accrued + waiting, all programs
	ClawbackDue    decimal.Decimal
	Chart          template.HTML
	Days           int
	FirstDay       string
	Liability      []liabilityRow
	TermsFile      string
	TermsSHA256    string
	TermsRecorded  bool
	Terms          []termsRow
	Top            []Beneficiary
	Pipeline       []pipelineRow
	PipelineTotal  int64
	Reasons        []reasonRow
	Files          []fileRow
}

type programRow struct {
	Program, Payout string
	Grants          int64
	AsOf, ToDate    decimal.Decimal
}

type liabilityRow struct {
	Program string
	Liability
}

type termsRow struct {
	Index                     int // in the manifest's terms.versions
	Program, ID, SHA256, From string
	State, StateClass         string
}

type pipelineRow struct {
	PipelineAccount
	Percent int64
}

type reasonRow struct {
	Reason string
	Count  int64
}

type fileRow struct {
	Index int // in the manifest's files
	Name  string
	Rows  int64
}

// programOrder lists programs in report order, then any other in name order.
func programOrder(sets ...[]string) []string {
	known := []string{programReferral, programTemplate, programServerless, programSignup}
	seen := map[string]bool{}
	var extra []string
	for _, set := range sets {
		for _, p := range set {
			if !slices.Contains(known, p) && !seen[p] {
				extra = append(extra, p)
			}
			seen[p] = true
		}
	}
	slices.Sort(extra)
	return append(known, extra...)
}

// programName is a program's name for people.
func programName(p string) string {
	switch p {
	case programReferral:
		return "Referral Program"
	case programTemplate:
		return "Template Program"
	case programServerless:
		return "Serverless Referral Program"
	case programSignup:
		return "Signup Bonus Program"
	}
	return p
}

// programShort is a program's short name, for lists.
func programShort(p string) string {
	return strings.TrimSuffix(programName(p), " Program")
}

// programColor is a program's colour in the chart.
func programColor(p string, i int) string {
	switch p {
	case programReferral:
		return "#2563eb"
	case programTemplate:
		return "#0f766e"
	case programServerless:
		return "#b45309"
	case programSignup:
		return "#7c3aed"
	}
	others := []string{"#7c3aed", "#be123c", "#4d7c0f", "#0369a1"}
	return others[i%len(others)]
}

// termsOfManifest is the part of a run's terms record (jobs.TermsRecord) the summary shows.
type termsOfManifest struct {
	FileSHA256 string `json:"file_sha256"`
	Versions   []struct {
		Program string `json:"program"`
		ID      string `json:"id"`
		SHA256  string `json:"sha256"`
	} `json:"versions"`
}

func newSummaryPage(man Manifest, s Summary, seen tally, tie error) (summaryPage, error) {
	p := summaryPage{Man: man, AsOf: man.AsOf.Format(time.RFC3339), TiesOut: tie == nil, Days: len(s.Days)}
	if tie != nil {
		p.TieOutProblem = tie.Error()
	}
	if len(s.Days) > 0 {
		p.FirstDay = s.Days[0]
	}
	var dailyPrograms []string
	for _, d := range s.Daily {
		dailyPrograms = append(dailyPrograms, d.Program)
	}
	programs := programOrder(slices.Collect(maps.Keys(man.ControlTotals)), slices.Collect(maps.Keys(seen.grants)),
		slices.Collect(maps.Keys(s.Liability)), dailyPrograms)

	for _, prog := range programs {
		t := man.ControlTotals[prog]
		if _, ok := man.ControlTotals[prog]; !ok && seen.grants[prog] == 0 {
			continue
		}
		p.Programs = append(p.Programs, programRow{Program: prog, Payout: PayoutCredits, Grants: seen.grants[prog],
			AsOf: t.GrantedAsOfUSD, ToDate: t.GrantedToDateUSD})
		p.GrantsTonight += seen.grants[prog]
		p.GrantedTonight = p.GrantedTonight.Add(t.GrantedAsOfUSD)
		p.GrantedToDate = p.GrantedToDate.Add(t.GrantedToDateUSD)
	}

	chart := barChart{Title: fmt.Sprintf("Granted per day, %d days to %s", len(s.Days), man.BusinessDate), Days: s.Days}
	for i, prog := range programs {
		series := chartSeries{Name: programShort(prog), Key: prog, Color: programColor(prog, i)}
		for _, d := range s.Daily {
			if d.Program == prog && d.AmountUSD.IsPositive() {
				series.Marks = append(series.Marks, chartMark{Day: d.Date, Value: d.AmountUSD, Note: plural(d.Grants, "grant")})
			}
		}
		if _, ok := man.ControlTotals[prog]; ok || len(series.Marks) > 0 {
			chart.Series = append(chart.Series, series)
		}
	}
	svg, err := chart.render()
	if err != nil {
		return p, err
	}
	p.Chart = svg

	for _, prog := range programs {
		l, ok := man.Liability[prog]
		if !ok {
			continue
		}
		p.Liability = append(p.Liability, liabilityRow{Program: prog, Liability: l})
		p.Owed = p.Owed.Add(l.AccruedUSD).Add(l.WaitingUSD)
		p.ClawbackDue = p.ClawbackDue.Add(l.ClawbackDueUSD)
	}

	if len(man.Terms) > 0 {
		var rec termsOfManifest
		if err := json.Unmarshal(man.Terms, &rec); err != nil {
			return p, fmt.Errorf("terms: %w", err)
		}
		p.TermsRecorded, p.TermsSHA256 = true, rec.FileSHA256
		info := map[string]TermsVersion{}
		for _, v := range s.Terms {
			info[v.Program+"/"+v.ID] = v
		}
		for i, v := range rec.Versions {
			row := termsRow{Index: i, Program: v.Program, ID: v.ID, SHA256: v.SHA256, From: "since forever",
				State: "in force", StateClass: "ok"}
			if t, ok := info[v.Program+"/"+v.ID]; ok {
				switch from := t.From.UTC(); {
				case from.IsZero():
				case from.Equal(from.Truncate(24 * time.Hour)):
					row.From = from.Format(time.DateOnly)
				default:
					row.From = from.Format(time.RFC3339)
				}
				switch {
				case t.From.After(man.AsOf):
					row.State, row.StateClass = "not yet: starts after the cutoff", "muted"
				case !t.Enabled:
					row.State, row.StateClass = "closed: its relationships earn nothing", "muted"
				}
			}
			p.Terms = append(p.Terms, row)
		}
	}

	p.Top = s.Top
	for _, a := range s.Pipeline {
		pct := a.Progress.Mul(decimal.NewFromInt(100)).Floor().IntPart()
		p.Pipeline = append(p.Pipeline, pipelineRow{PipelineAccount: a, Percent: min(max(pct, 0), 100)})
	}
	p.PipelineTotal = s.PipelineAccounts

	for reason, n := range seen.reasons {
		p.Reasons = append(p.Reasons, reasonRow{Reason: reason, Count: n})
	}
	slices.SortFunc(p.Reasons, func(a, b reasonRow) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Reason, b.Reason))
	})

	for i, f := range man.Files {
		p.Files = append(p.Files, fileRow{Index: i, Name: strings.TrimPrefix(f.Key, Prefix(man.BusinessDate)), Rows: f.Rows})
	}
	return p, nil
}

// plural writes n and noun, with an s unless n is 1.
func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return thousands(strconv.FormatInt(n, 10)) + " " + noun + "s"
}
