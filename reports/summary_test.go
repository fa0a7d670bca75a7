package reports

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/runpod/creditrecon/internal/summarytest"
)

// sha is a stand-in SHA-256 for the fixture's terms.
func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// fixtureTerms is a terms record as jobs.TermsRecord writes it: a file and six versions, one of
// them starting after the cutoff and one closing its program.
var fixtureTerms = func() string {
	type ref struct {
		Program string `json:"program"`
		ID      string `json:"id"`
		SHA256  string `json:"sha256"`
	}
	rec := struct {
		File       string         `json:"file"`
		FileSHA256 string         `json:"file_sha256"`
		Versions   []ref          `json:"versions"`
		Terms      map[string]any `json:"terms"`
	}{File: "terms/runpod-2025.yaml", FileSHA256: sha("terms/runpod-2025.yaml"), Terms: map[string]any{"holding_days": 0}}
	for _, v := range []string{"referral/seed", "referral/runpod-2025-06", "referral/runpod-2026-03", "template/seed",
		"serverless_referral/seed", "serverless_referral/ended-2025-06"} {
		program, id, _ := strings.Cut(v, "/")
		rec.Versions = append(rec.Versions, ref{program, id, sha(v)})
	}
	b, err := json.Marshal(rec)
	if err != nil {
		panic(err)
	}
	return string(b)
}()

// evilID is a referred user id that would load an image if it were not escaped.
const evilID = `<img src="http://evil.example/x.png">`

// fixtureSummary goes with newFixture and fixtureInfo: 90 days to 2026-02-04, the grants of
// grants.csv on the last day and 25.00 of referral grants earlier (granted to date: 65.00).
func fixtureSummary() Summary {
	end := ts("2026-02-04T00:00:00Z")
	days := make([]string, 90)
	for i := range days {
		days[i] = end.AddDate(0, 0, i-89).Format(time.DateOnly)
	}
	return Summary{
		Days: days,
		Daily: []DailyGranted{
			{Date: "2026-01-10", Program: "referral", Payout: PayoutCredits, Grants: 1, AmountUSD: d("25.00")},
			{Date: "2026-02-04", Program: "referral", Payout: PayoutCredits, Grants: 1, AmountUSD: d("40.00")},
			{Date: "2026-02-04", Program: "serverless_referral", Payout: PayoutCredits, Grants: 2, AmountUSD: d("1000.00")},
			{Date: "2026-02-04", Program: "template", Payout: PayoutCredits, Grants: 1, AmountUSD: d("18.14")},
		},
		Top: []Beneficiary{
			{BeneficiaryID: "-referrer", Programs: []string{"serverless_referral"}, Grants: 1, GrantedToDateUSD: d("500.00"), GrantedAsOfUSD: d("500.00")},
			{BeneficiaryID: newlineID, Programs: []string{"serverless_referral"}, Grants: 1, GrantedToDateUSD: d("500.00"), GrantedAsOfUSD: d("500.00")},
			{BeneficiaryID: quotedID, Programs: []string{"referral"}, Grants: 1, GrantedToDateUSD: d("40.00"), GrantedAsOfUSD: d("40.00")},
			{BeneficiaryID: "@refund-user", Programs: []string{"referral"}, Grants: 1, GrantedToDateUSD: d("25.00"), GrantedAsOfUSD: d("0")},
			{BeneficiaryID: "créateur-ü", Programs: []string{"template"}, Grants: 1, GrantedToDateUSD: d("18.14"), GrantedAsOfUSD: d("18.14")},
		},
		Pipeline: []PipelineAccount{
			{Program: "referral", TermsID: "seed", AccountID: "日本語ユーザー", BeneficiaryID: "日本語ユーザー", Progress: d("0.8"),
				DueUSD: d("40.00"), Missing: "20 of 25 referrals, not accepted"},
			{Program: "serverless_referral", TermsID: "seed", AccountID: evilID, BeneficiaryID: "-referrer", Progress: d("0.55"),
				DueUSD: d("1000.00"), Missing: "serverless spend 550.00, needs 1000.00"},
			{Program: "template", TermsID: "seed", AccountID: "\ttab-template", BeneficiaryID: "+15551234", Progress: d("0.041666"),
				DueUSD: d("0.00"), Missing: "runtime 3600s below 86400s"},
		},
		PipelineAccounts: 3,
		Liability: map[string]Liability{
			"referral":            {AccruedUSD: d("40"), AccruedAccounts: 1, ClawbackDueUSD: d("25.00"), ClawbackAccounts: 1},
			"template":            {WaitingUSD: d("0.01"), WaitingAccounts: 1},
			"serverless_referral": {},
		},
		Terms: []TermsVersion{
			{Program: "referral", ID: "seed", Enabled: true},
			{Program: "referral", ID: "runpod-2025-06", From: ts("2025-06-16T00:00:00Z"), Enabled: true},
			{Program: "referral", ID: "runpod-2026-03", From: ts("2026-03-01T00:00:00Z"), Enabled: true},
			{Program: "template", ID: "seed", Enabled: true},
			{Program: "serverless_referral", ID: "seed", Enabled: true},
			{Program: "serverless_referral", ID: "ended-2025-06", From: ts("2025-06-16T00:00:00Z"), Enabled: false},
		},
	}
}

// exportFixture exports the fixture to a new folder and returns the sink, the manifest's and
// the page's bytes.
func exportFixture(t *testing.T) (Sink, []byte, []byte) {
	t.Helper()
	s := fileSinkAt(t, t.TempDir())
	if _, err := Export(context.Background(), s, fixtureInfo(), newFixture()); err != nil {
		t.Fatal(err)
	}
	return s, readObject(t, s, "dt=2026-02-04/manifest.json"), readObject(t, s, "dt=2026-02-04/summary.html")
}

func TestSummaryFiguresEqualTheManifest(t *testing.T) {
	_, man, page := exportFixture(t)
	n, problems, err := summarytest.Compare(page, man)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
	// 4 programs x 2 granted + 3 x 6 liability + 6 versions x 2 + file hash + 7 files + anomalies,
	// date, cutoff, version + credits and cash tonight.
	if n != 8+18+12+1+7+4+2 {
		t.Errorf("compared %d figures, want %d", n, 8+18+12+1+7+4+2)
	}
	var m Manifest
	if err := json.Unmarshal(man, &m); err != nil {
		t.Fatal(err)
	}
	if got := m.Liability["referral"]; !got.AccruedUSD.Equal(d("40")) || got.ClawbackAccounts != 1 {
		t.Errorf("manifest liability of referral = %+v", got)
	}
	last := m.Files[len(m.Files)-1]
	if last.Key != "dt=2026-02-04/summary.html" || last.Rows != 0 || last.SHA256 != hex.EncodeToString(sha256Of(page)) {
		t.Errorf("manifest's last file = %+v, want summary.html with its hash and 0 rows", last)
	}
}

func sha256Of(b []byte) []byte {
	sum := sha256.Sum256(b)
	return sum[:]
}

// TestSummaryCompareCatchesDifferences shows that the comparison fails on a wrong figure, a
// figure shown differently from its value, a figure the manifest lacks and a missing figure.
func TestSummaryCompareCatchesDifferences(t *testing.T) {
	_, man, page := exportFixture(t)
	tests := []struct {
		name, old, new, want string
	}{
		{"wrong value", `data-value="40.00">$40.00`, `data-value="40.01">$40.01`, "control_totals.referral.granted_as_of_usd: page says"},
		{"shown differently", `data-value="40.00">$40.00`, `data-value="40.00">$41.00`, "shown as"},
		{"not in the manifest", `data-figure="anomalies"`, `data-figure="anomaly_count"`, "anomaly_count: not in the manifest"},
		{"missing", `data-figure="liability.template.waiting_usd"`, `data-x="1"`, "liability.template.waiting_usd: in the manifest but not on the page"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !bytes.Contains(page, []byte(tt.old)) {
				t.Fatalf("page has no %q", tt.old)
			}
			changed := bytes.Replace(page, []byte(tt.old), []byte(tt.new), 1)
			_, problems, err := summarytest.Compare(changed, man)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(strings.Join(problems, "\n"), tt.want) {
				t.Errorf("problems %q, want one with %q", problems, tt.want)
			}
		})
	}
}

func TestSummaryContent(t *testing.T) {
	_, _, page := exportFixture(t)
	doc, err := summarytest.Parse(page)
	if err != nil {
		t.Fatal(err)
	}
	text := summarytest.Text(doc)
	for _, want := range []string{
		"Credits summary, business date 2026-02-04",
		"$1,058.14", "4 grants, credits", // tonight: 40.00 + 18.14 + 1000.00
		"$1,083.14",                // to date: 65.00 + 18.14 + 1000.00
		"✓ Ties out",               // the fixture ties out
		"Owed, not granted $40.01", // accrued 40.00 + waiting 0.01
		"clawback due $25.00",
		"Top 5 beneficiaries",
		"日本語ユーザー", "80%", "20 of 25 referrals, not accepted",
		evilID, // escaped: shown as text
		"nan_amount 1", "self_referral 1", "unknown_template 1",
		"not yet: starts after the cutoff", "closed: its relationships earn nothing", "2025-06-16",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the page does not say %q", want)
		}
	}
	if strings.Contains(text, "Does not tie out") {
		t.Error("a set that ties out says it does not")
	}
	if marks := summarytest.Elements(doc, "rect", "mark"); len(marks) != 4 {
		t.Errorf("%d chart marks, want 4 (one per program and day with grants)", len(marks))
	}
	// The pipeline keeps the caller's order.
	if i, j := strings.Index(text, "日本語ユーザー"), strings.Index(text, "tab-template"); i < 0 || j < i {
		t.Errorf("pipeline order: 日本語ユーザー at %d, tab-template at %d", i, j)
	}
}

// TestSummaryIsSelfContained checks what the browser test proves by loading the page, without a
// browser: no script, no element or attribute that could fetch anything, no CSS url() or
// @import, and a policy that forbids any fetch.
func TestSummaryIsSelfContained(t *testing.T) {
	_, _, page := exportFixture(t)
	if problems := selfContained(t, page); len(problems) > 0 {
		t.Errorf("the page is not self-contained: %q", problems)
	}
	// The check itself catches what it looks for.
	for _, bad := range []string{`<img src="http://x.example/a.png">`, `<script>1</script>`,
		`<link rel="stylesheet" href="https://x.example/a.css">`, `<style>@import "https://x.example/a.css";</style>`,
		`<div style="background: url(http://x.example/a.png)"></div>`, `<svg><image href="http://x.example/a.png"/></svg>`} {
		changed := bytes.Replace(page, []byte("</body>"), []byte(bad+"</body>"), 1)
		if len(selfContained(t, changed)) == 0 {
			t.Errorf("%s went unnoticed", bad)
		}
	}
}

func selfContained(t *testing.T, page []byte) []string {
	t.Helper()
	doc, err := summarytest.Parse(page)
	if err != nil {
		t.Fatal(err)
	}
	var problems []string
	csp := false
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		switch n.Data {
		case "script", "link", "img", "image", "iframe", "object", "embed", "video", "audio", "source", "use", "form", "base":
			problems = append(problems, "<"+n.Data+">")
		case "style":
			var css strings.Builder
			for c := range n.ChildNodes() {
				css.WriteString(c.Data)
			}
			if strings.Contains(css.String(), "url(") || strings.Contains(css.String(), "@import") {
				problems = append(problems, "<style> fetches")
			}
		case "meta":
			if v, _ := summarytest.Attr(n, "http-equiv"); v == "Content-Security-Policy" {
				c, _ := summarytest.Attr(n, "content")
				csp = strings.Contains(c, "default-src 'none'") && !strings.Contains(c, "script-src")
			}
		}
		for _, a := range n.Attr {
			switch {
			case a.Key == "src" || a.Key == "href" || a.Key == "action" || a.Key == "srcset" || a.Key == "poster":
				problems = append(problems, n.Data+" "+a.Key+"="+a.Val)
			case strings.HasPrefix(a.Key, "on"):
				problems = append(problems, n.Data+" "+a.Key)
			case a.Key == "style" && strings.Contains(a.Val, "url("):
				problems = append(problems, n.Data+" style with url()")
			}
		}
	}
	if !csp {
		problems = append(problems, "no Content-Security-Policy default-src 'none'")
	}
	return problems
}

func TestSummaryTieOutFailure(t *testing.T) {
	ctx := context.Background()
	s := fileSinkAt(t, t.TempDir())
	m := fixtureInfo()
	setTotal(&m, "template", func(p *ProgramTotals) { p.GrantedAsOfUSD = d("18.15") })
	_, err := Export(ctx, s, m, newFixture())
	var tie *TieOutError
	if !errors.As(err, &tie) {
		t.Fatalf("Export error = %v, want a *TieOutError", err)
	}
	page := readObject(t, s, "dt=2026-02-04/summary.html")
	doc, err := summarytest.Parse(page)
	if err != nil {
		t.Fatal(err)
	}
	text := summarytest.Text(doc)
	if strings.Contains(text, "Ties out") || !strings.Contains(text, "Does not tie out") ||
		!strings.Contains(text, "grants.csv amount_usd sums to 18.14 but the database total for program template is 18.15") {
		t.Errorf("the page of a set that does not tie out says:\n%s", text)
	}
	if _, err := ReadManifest(ctx, s, "2026-02-04"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("manifest after a failed tie-out: err = %v, want fs.ErrNotExist", err)
	}
}

func TestSummaryError(t *testing.T) {
	ctx := context.Background()
	s := fileSinkAt(t, t.TempDir())
	m := fixtureInfo()
	errLedger := errors.New("ledger unreachable")
	m.Summary = func(context.Context) (Summary, error) { return Summary{}, errLedger }
	_, err := Export(ctx, s, m, newFixture())
	if !errors.Is(err, errLedger) || !strings.Contains(err.Error(), "summary.html") {
		t.Fatalf("Export error = %v, want one naming summary.html and wrapping %v", err, errLedger)
	}
	if _, err := ReadManifest(ctx, s, "2026-02-04"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("manifest after a failed summary: err = %v, want fs.ErrNotExist", err)
	}
	// A mark outside the trend's days is refused rather than drawn somewhere else.
	m.Summary = func(context.Context) (Summary, error) {
		s := fixtureSummary()
		s.Daily = append(s.Daily, DailyGranted{Date: "2026-02-05", Program: "template", AmountUSD: d("1")})
		return s, nil
	}
	if _, err := Export(ctx, s, m, newFixture()); err == nil || !strings.Contains(err.Error(), "outside its days") {
		t.Errorf("Export with a mark outside the days: err = %v", err)
	}
}

// TestSummaryWithoutSummary: a caller that sets no Summary gets the CSVs and the manifest only.
func TestSummaryWithoutSummary(t *testing.T) {
	s := fileSinkAt(t, t.TempDir())
	m := fixtureInfo()
	m.Summary = nil
	man, err := Export(context.Background(), s, m, newFixture())
	if err != nil {
		t.Fatal(err)
	}
	if len(man.Files) != 7 || man.Liability != nil {
		t.Errorf("without a summary: %d files, liability %v; want the 7 CSVs and none", len(man.Files), man.Liability)
	}
	if _, err := s.Open(context.Background(), "dt=2026-02-04/summary.html"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("summary.html without a summary: err = %v", err)
	}
}
