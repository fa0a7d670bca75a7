package reports

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// reportFiles are the objects of a set, in the order the manifest lists the CSVs.
var reportFiles = []string{"grants.csv", "referrers.csv", "templates.csv",
	"serverless_referrals.csv", "signup_bonuses.csv", "payouts.csv", "anomalies.csv", "summary.html", "manifest.json"}

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// fixture is a Source over fixed slices.
type fixture struct {
	grants     []GrantRow
	referrers  []ReferrerRow
	templates  []TemplateRow
	serverless []ServerlessRow
	signups    []SignupBonusRow
	payouts    []PayoutRow
	anomalies  []AnomalyRow
}

func each[R any](rows []R, fn func(R) error) error {
	for _, r := range rows {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

func (f *fixture) Grants(_ context.Context, fn func(GrantRow) error) error {
	return each(f.grants, fn)
}
func (f *fixture) Referrers(_ context.Context, fn func(ReferrerRow) error) error {
	return each(f.referrers, fn)
}
func (f *fixture) Templates(_ context.Context, fn func(TemplateRow) error) error {
	return each(f.templates, fn)
}
func (f *fixture) ServerlessReferrals(_ context.Context, fn func(ServerlessRow) error) error {
	return each(f.serverless, fn)
}
func (f *fixture) SignupBonuses(_ context.Context, fn func(SignupBonusRow) error) error {
	return each(f.signups, fn)
}
func (f *fixture) Payouts(_ context.Context, fn func(PayoutRow) error) error {
	return each(f.payouts, fn)
}
func (f *fixture) Anomalies(_ context.Context, fn func(AnomalyRow) error) error {
	return each(f.anomalies, fn)
}

const (
	quotedID  = `ref,"quoted"`
	formulaID = `=HYPERLINK("http://evil.example","click")`
	newlineID = "line1\nline2"
)

// newFixture is the small fixed scenario behind the golden files: IDs with commas, quotes,
// newlines, Unicode and formula prefixes, a refund and a NaN amount.
func newFixture() *fixture {
	asOf := ts("2026-02-05T00:00:00Z")
	return &fixture{
		grants: []GrantRow{
			{GrantID: 101, Program: "referral", TermsID: "seed", BeneficiaryID: quotedID, AmountUSD: d("40.00"), AsOf: asOf,
				IdempotencyKey: "referral:" + quotedID + ":0.00", AccountID: quotedID,
				GrantedBeforeUSD: d("0"), EarnedUSD: d("40.00008"), RunID: 7, CreatedAt: ts("2026-02-05T00:03:12.123456Z")},
			{GrantID: 102, Program: "serverless_referral", TermsID: "seed", BeneficiaryID: "-referrer", AmountUSD: d("500"), AsOf: asOf,
				IdempotencyKey: "serverless_referral:" + newlineID + ":referrer", AccountID: newlineID + "/referrer",
				ReferredUserID: newlineID, Role: "referrer", GrantedBeforeUSD: d("0"), EarnedUSD: d("500"),
				RunID: 7, CreatedAt: ts("2026-02-05T00:03:12Z")},
			{GrantID: 103, Program: "serverless_referral", TermsID: "seed", BeneficiaryID: newlineID, AmountUSD: d("500.00"), AsOf: asOf,
				IdempotencyKey: "serverless_referral:" + newlineID + ":referred", AccountID: newlineID + "/referred",
				ReferredUserID: newlineID, Role: "referred", GrantedBeforeUSD: d("0"), EarnedUSD: d("500"),
				RunID: 7, CreatedAt: ts("2026-02-05T00:03:12Z")},
			{GrantID: 104, Program: "template", TermsID: "seed", BeneficiaryID: "créateur-ü", AmountUSD: d("18.14"), AsOf: asOf,
				IdempotencyKey: "template:" + formulaID + ":0.00", AccountID: formulaID, TemplateID: formulaID,
				GrantedBeforeUSD: d("0.00"), EarnedUSD: d("18.1440"), RunID: 8, CreatedAt: ts("2026-02-05T01:00:00+01:00")},
		},
		referrers: []ReferrerRow{
			{ReferrerID: "@refund-user", TermsID: "seed", Referrals: 30, ReferralSpendUSD: d("-3.50"), EarnedUSD: d("-0.07"),
				TargetUSD: d("0"), GrantedUSD: d("25.00"), ClawbackDueUSD: d("25"), Accepted: true,
				Status: "clawback_due", StatusReason: "refunds brought earned below granted"},
			{ReferrerID: quotedID, TermsID: "seed", Referrals: 25, ReferralSpendUSD: d("2000.004"), EarnedUSD: d("40.00008"),
				TargetUSD: d("40"), GrantedUSD: d("40.00"), ClawbackDueUSD: d("0"), Accepted: true, Status: "granted"},
			{ReferrerID: "日本語ユーザー", TermsID: "seed", Referrals: 20, ReferralSpendUSD: d("2000"), EarnedUSD: d("40"),
				TargetUSD: d("0"), GrantedUSD: d("0"), ClawbackDueUSD: d("0"),
				Status: "accrued", StatusReason: "20 of 25 referrals, not accepted"},
		},
		templates: []TemplateRow{
			{TemplateID: "\ttab-template", TermsID: "seed", CreatorID: "+15551234", RuntimeSeconds: 3600, TemplateSpendUSD: d("0.54"),
				EarnedUSD: d("0.0054"), TargetUSD: d("0"), GrantedUSD: d("0"), ClawbackDueUSD: d("0"),
				Status: "accrued", StatusReason: "runtime 3600s below 86400s"},
			{TemplateID: formulaID, TermsID: "seed", CreatorID: "créateur-ü", RuntimeSeconds: 604800, TemplateSpendUSD: d("1814.40"),
				EarnedUSD: d("18.144"), TargetUSD: d("18.14"), GrantedUSD: d("18.14"), ClawbackDueUSD: d("0"),
				Status: "granted"},
		},
		serverless: []ServerlessRow{
			{ReferredUserID: newlineID, TermsID: "seed", ReferrerID: "-referrer", ServerlessSpendUSD: d("1000.000001"),
				GrantedUSD: d("1000"), ReferrerGrantedUSD: d("500"), ReferredGrantedUSD: d("500"), Status: "granted"},
		},
		signups: []SignupBonusRow{
			{ReferredUserID: newlineID, ReferrerID: "-referrer", TermsID: "runpod-2025-06", Role: "referrer", BeneficiaryID: "-referrer",
				LoadsUSD: d("9.99"), Country: "DE", Kind: "fixed", AmountUSD: d("0"), GrantedUSD: d("0"), Payout: "credits", Status: "pending"},
			{ReferredUserID: newlineID, ReferrerID: "-referrer", TermsID: "runpod-2025-06", Role: "referred", BeneficiaryID: newlineID,
				LoadsUSD: d("9.99"), Kind: "draw", U: "0.5", DrawEntry: "0", AmountUSD: d("0"), GrantedUSD: d("0"), Payout: "credits", Status: "pending"},
		},
		anomalies: []AnomalyRow{
			{UsageEventID: 9001, Reason: "nan_amount", UserID: "user-1", Product: "pod", AmountUSD: "NaN",
				OccurredAt: ts("2026-02-03T10:00:00Z")},
			{UsageEventID: 9002, Reason: "unknown_template", UserID: "user-2", Product: "serverless",
				TemplateID: "tpl-missing", AmountUSD: "-3.50", OccurredAt: ts("2026-02-04T23:59:59.5Z")},
			{UsageEventID: 9003, Reason: "self_referral", UserID: "=cmd|' /C calc'!A0", Product: "pod",
				AmountUSD: "12.00", OccurredAt: ts("2026-02-04T08:00:00Z")},
		},
	}
}

func fixtureInfo() ManifestInfo {
	return ManifestInfo{
		RunID:        8,
		AsOf:         ts("2026-02-05T00:00:00Z"),
		BusinessDate: "2026-02-04",
		Parameters:   json.RawMessage(`{"referral":{"rate":"0.02","min_referrals":25},"template":{"rate":"0.01"}}`),
		Version:      "v1.2.3",
		ControlTotals: map[string]ProgramTotals{
			"referral": {UsageRows: 1234, UsageConsideredUSD: d("3996.504"), EarnedUSD: d("79.93008"),
				GrantedAsOfUSD: d("40"), GrantedToDateUSD: d("65.00")},
			"template": {UsageRows: 2, UsageConsideredUSD: d("1814.94"), EarnedUSD: d("18.1494"),
				GrantedAsOfUSD: d("18.14"), GrantedToDateUSD: d("18.14")},
			"serverless_referral": {UsageRows: 10, UsageConsideredUSD: d("1000.000001"), EarnedUSD: d("1000"),
				GrantedAsOfUSD: d("1000.00"), GrantedToDateUSD: d("1000.00")},
		},
		PayoutTotals: map[string]PayoutTotals{
			"credits": {GrantsAsOf: 4, GrantedAsOfUSD: d("1058.14"), GrantedToDateUSD: d("1083.14")},
		},
		AnomalyCount: 3,
		Terms:        json.RawMessage(fixtureTerms),
		Summary:      func(context.Context) (Summary, error) { return fixtureSummary(), nil },
	}
}

func fileSinkAt(t testing.TB, dir string) Sink {
	t.Helper()
	s, err := OpenSink(context.Background(), "file://"+dir, SinkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func readObject(t testing.TB, s Sink, key string) []byte {
	t.Helper()
	rc, err := s.Open(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkGolden compares the report set of the fixture in s with testdata/, or rewrites
// testdata/ with -update.
func checkGolden(t *testing.T, s Sink) {
	t.Helper()
	for _, name := range reportFiles {
		got := readObject(t, s, "dt=2026-02-04/"+name)
		golden := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(golden, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s (run go test -update to accept)\ngot:\n%s\nwant:\n%s", name, golden, got, want)
		}
	}
}

// checkManifest verifies every file of the manifest against the stored objects, as a
// finance analyst would with sha256sum.
func checkManifest(t *testing.T, s Sink, man Manifest) {
	t.Helper()
	if len(man.Files) != 8 {
		t.Fatalf("manifest lists %d files, want 8", len(man.Files))
	}
	for i, f := range man.Files {
		if want := "dt=2026-02-04/" + reportFiles[i]; f.Key != want {
			t.Errorf("file %d key = %q, want %q", i, f.Key, want)
		}
		b := readObject(t, s, f.Key)
		sum := sha256.Sum256(b)
		if got := hex.EncodeToString(sum[:]); got != f.SHA256 {
			t.Errorf("%s sha256 = %s, manifest says %s", f.Key, got, f.SHA256)
		}
		if int64(len(b)) != f.Bytes {
			t.Errorf("%s has %d bytes, manifest says %d", f.Key, len(b), f.Bytes)
		}
		if !strings.HasSuffix(f.Key, ".csv") {
			if f.Rows != 0 {
				t.Errorf("%s: rows %d, want 0 (not a CSV file)", f.Key, f.Rows)
			}
			continue
		}
		records, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
		if err != nil {
			t.Fatalf("%s is not valid CSV: %v", f.Key, err)
		}
		if got := int64(len(records) - 1); got != f.Rows {
			t.Errorf("%s has %d rows, manifest says %d", f.Key, got, f.Rows)
		}
	}
}

func TestExportGolden(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := fileSinkAt(t, dir)
	man, err := Export(ctx, s, fixtureInfo(), newFixture())
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, s)
	checkManifest(t, s, man)

	read, err := ReadManifest(ctx, s, "2026-02-04")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := mustJSON(t, read), mustJSON(t, man); got != want {
		t.Errorf("ReadManifest = %s, want %s", got, want)
	}

	// No temporary files stay behind.
	entries, err := os.ReadDir(filepath.Join(dir, "dt=2026-02-04"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(reportFiles) {
		t.Errorf("directory holds %d entries, want %d", len(entries), len(reportFiles))
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestExportRegeneratesIdenticalBytes(t *testing.T) {
	ctx := context.Background()
	first, second := fileSinkAt(t, t.TempDir()), fileSinkAt(t, t.TempDir())
	if _, err := Export(ctx, first, fixtureInfo(), newFixture()); err != nil {
		t.Fatal(err)
	}
	// The second sink is exported twice: regenerating over an existing set.
	for range 2 {
		if _, err := Export(ctx, second, fixtureInfo(), newFixture()); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range reportFiles {
		key := "dt=2026-02-04/" + name
		if !bytes.Equal(readObject(t, first, key), readObject(t, second, key)) {
			t.Errorf("%s differs between exports of the same data", key)
		}
	}
}

func TestExportCSVParsesBack(t *testing.T) {
	s := fileSinkAt(t, t.TempDir())
	if _, err := Export(context.Background(), s, fixtureInfo(), newFixture()); err != nil {
		t.Fatal(err)
	}
	parse := func(name string) [][]string {
		r := csv.NewReader(bytes.NewReader(readObject(t, s, "dt=2026-02-04/"+name)))
		records, err := r.ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		return records
	}
	grants := parse("grants.csv")
	if got, want := strings.Join(grants[0], ","), strings.Join(grantColumns, ","); got != want {
		t.Errorf("grants.csv header = %s, want %s", got, want)
	}
	// col is a field of a report by its column name.
	col := func(records [][]string, row int, name string) string {
		i := slices.Index(records[0], name)
		if i < 0 {
			t.Fatalf("no column %s in %v", name, records[0])
		}
		return records[row][i]
	}
	referrers, templates, anomalies := parse("referrers.csv"), parse("templates.csv"), parse("anomalies.csv")
	tests := []struct {
		name      string
		got, want string
	}{
		{"comma and quotes survive", col(grants, 1, "beneficiary_id"), quotedID},
		{"newline survives", col(grants, 3, "beneficiary_id"), newlineID},
		{"formula is neutralised", col(grants, 4, "account_id"), "'" + formulaID},
		{"leading minus in an ID is neutralised", col(grants, 2, "beneficiary_id"), "'-referrer"},
		{"cents have two decimals", col(grants, 2, "amount_usd"), "500.00"},
		{"exact amounts keep their digits", col(grants, 4, "earned_usd"), "18.144"},
		{"times are UTC", col(grants, 4, "created_at"), "2026-02-05T00:00:00Z"},
		{"fractional seconds are kept", col(grants, 1, "created_at"), "2026-02-05T00:03:12.123456Z"},
		{"terms version", col(grants, 1, "terms_id"), "seed"},
		{"negative money is not neutralised", col(referrers, 1, "referral_spend_usd"), "-3.5"},
		{"at sign is neutralised", col(referrers, 1, "referrer_id"), "'@refund-user"},
		{"unicode survives", col(referrers, 3, "referrer_id"), "日本語ユーザー"},
		{"tab is neutralised", col(templates, 1, "template_id"), "'\ttab-template"},
		{"plus is neutralised", col(templates, 1, "creator_id"), "'+15551234"},
		{"raw anomaly amount", col(anomalies, 1, "amount_usd"), "NaN"},
		{"negative anomaly amount", col(anomalies, 2, "amount_usd"), "-3.50"},
		{"empty template id", col(anomalies, 1, "template_id"), ""},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

// failingSink fails every write once a total of limit bytes has been written.
type failingSink struct {
	Sink
	limit   int64
	written int64
}

var errDiskFull = errors.New("disk full (injected)")

func (s *failingSink) Create(ctx context.Context, key string) (Object, error) {
	obj, err := s.Sink.Create(ctx, key)
	if err != nil {
		return nil, err
	}
	return &failingObject{Object: obj, sink: s}, nil
}

type failingObject struct {
	Object
	sink *failingSink
}

func (o *failingObject) Write(p []byte) (int, error) {
	room := o.sink.limit - o.sink.written
	if int64(len(p)) <= room {
		o.sink.written += int64(len(p))
		return o.Object.Write(p)
	}
	n, err := o.Object.Write(p[:max(room, 0)])
	o.sink.written += int64(n)
	if err == nil {
		err = errDiskFull
	}
	return n, err
}

func TestExportWriteFailure(t *testing.T) {
	// The CSV files of the fixture end at 974, 1414, 1768, 1963 and 2245 bytes, summary.html at
	// 25176; the manifest follows.
	for _, limit := range []int64{0, 100, 1500, 1700, 2000, 2500, 25300} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			dir := t.TempDir()
			base := fileSinkAt(t, dir)
			_, err := Export(context.Background(), &failingSink{Sink: base, limit: limit}, fixtureInfo(), newFixture())
			if !errors.Is(err, errDiskFull) {
				t.Fatalf("limit %d: Export error = %v, want one wrapping %v", limit, err, errDiskFull)
			}
			if !strings.Contains(err.Error(), "export dt=2026-02-04/") {
				t.Errorf("error %q does not name the file", err)
			}
			if _, err := ReadManifest(context.Background(), base, "2026-02-04"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("manifest after a failed export: err = %v, want fs.ErrNotExist", err)
			}
			leftovers, _ := filepath.Glob(filepath.Join(dir, "*", "*"+tempMarker+"*"))
			if len(leftovers) > 0 {
				t.Errorf("temporary files left behind: %v", leftovers)
			}
		})
	}
}

func TestExportSourceFailure(t *testing.T) {
	errBroken := errors.New("connection reset")
	src := &brokenSource{fixture: newFixture(), err: errBroken}
	s := fileSinkAt(t, t.TempDir())
	_, err := Export(context.Background(), s, fixtureInfo(), src)
	if !errors.Is(err, errBroken) || !strings.Contains(err.Error(), "templates.csv: read rows") {
		t.Fatalf("Export error = %v, want templates.csv read error wrapping %v", err, errBroken)
	}
	if _, err := s.Open(context.Background(), "dt=2026-02-04/templates.csv"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a cut-short templates.csv was committed (open err = %v)", err)
	}
}

// brokenSource fails after the first template row.
type brokenSource struct {
	*fixture
	err error
}

func (s *brokenSource) Templates(_ context.Context, fn func(TemplateRow) error) error {
	if err := fn(s.templates[0]); err != nil {
		return err
	}
	return s.err
}

func TestExportRejectsFractionalCents(t *testing.T) {
	src := newFixture()
	src.grants[0].AmountUSD = d("40.001")
	_, err := Export(context.Background(), fileSinkAt(t, t.TempDir()), fixtureInfo(), src)
	if err == nil || !strings.Contains(err.Error(), "grants.csv: write row 1: amount_usd 40.001 is not a whole number of cents") {
		t.Fatalf("Export error = %v, want a whole-cents error on row 1", err)
	}
}

func TestExportTieOut(t *testing.T) {
	tests := []struct {
		name   string
		change func(*ManifestInfo, *fixture)
		want   TieOutError
	}{
		{"grants as of cutoff", func(m *ManifestInfo, _ *fixture) {
			setTotal(m, "referral", func(p *ProgramTotals) { p.GrantedAsOfUSD = d("40.01") })
		}, TieOutError{Program: "referral", File: "grants.csv", Column: "amount_usd", CSV: d("40"), Database: d("40.01")}},
		{"referrers to date", func(m *ManifestInfo, _ *fixture) {
			setTotal(m, "referral", func(p *ProgramTotals) { p.GrantedToDateUSD = d("64.99") })
		}, TieOutError{Program: "referral", File: "referrers.csv", Column: "granted_usd", CSV: d("65"), Database: d("64.99")}},
		{"templates to date", func(_ *ManifestInfo, f *fixture) {
			f.templates[0].GrantedUSD = d("0.01")
		}, TieOutError{Program: "template", File: "templates.csv", Column: "granted_usd", CSV: d("18.15"), Database: d("18.14")}},
		{"serverless to date", func(_ *ManifestInfo, f *fixture) {
			f.serverless[0].GrantedUSD = d("999.99")
		}, TieOutError{Program: "serverless_referral", File: "serverless_referrals.csv", Column: "granted_usd", CSV: d("999.99"), Database: d("1000")}},
		{"missing program totals", func(m *ManifestInfo, _ *fixture) {
			delete(m.ControlTotals, "serverless_referral")
		}, TieOutError{Program: "serverless_referral", File: "grants.csv", Column: "amount_usd", CSV: d("1000"), Database: d("0")}},
		{"program without totals", func(_ *ManifestInfo, f *fixture) {
			f.grants = append(f.grants, GrantRow{GrantID: 105, Program: "bogus", AmountUSD: d("1.00")})
		}, TieOutError{Program: "bogus", File: "grants.csv", Column: "amount_usd", CSV: d("1"), Database: d("0")}},
		{"anomaly count", func(m *ManifestInfo, _ *fixture) {
			m.AnomalyCount = 4
		}, TieOutError{File: "anomalies.csv", Column: "rows", CSV: d("3"), Database: d("4")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s := fileSinkAt(t, t.TempDir())
			// A previous complete set must not stay vouched for by its old manifest.
			if _, err := Export(ctx, s, fixtureInfo(), newFixture()); err != nil {
				t.Fatal(err)
			}
			m, f := fixtureInfo(), newFixture()
			tt.change(&m, f)
			_, err := Export(ctx, s, m, f)
			var tie *TieOutError
			if !errors.As(err, &tie) {
				t.Fatalf("Export error = %v, want a *TieOutError", err)
			}
			if tie.Program != tt.want.Program || tie.File != tt.want.File || tie.Column != tt.want.Column ||
				!tie.CSV.Equal(tt.want.CSV) || !tie.Database.Equal(tt.want.Database) {
				t.Errorf("got %+v, want %+v", *tie, tt.want)
			}
			if _, err := ReadManifest(ctx, s, "2026-02-04"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("manifest after a failed tie-out: err = %v, want fs.ErrNotExist", err)
			}
		})
	}
}

func setTotal(m *ManifestInfo, program string, change func(*ProgramTotals)) {
	p := m.ControlTotals[program]
	change(&p)
	m.ControlTotals[program] = p
}

func TestExportRejectsBadInfo(t *testing.T) {
	tests := []struct {
		name   string
		change func(*ManifestInfo)
		want   string
	}{
		{"date", func(m *ManifestInfo) { m.BusinessDate = "2026-2-4" }, `business date "2026-2-4" is not YYYY-MM-DD`},
		{"parameters", func(m *ManifestInfo) { m.Parameters = json.RawMessage(`{"rate":`) }, "parameters are not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := fixtureInfo()
			tt.change(&m)
			_, err := Export(context.Background(), fileSinkAt(t, t.TempDir()), m, newFixture())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Export error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestEncoderHeaderOnly(t *testing.T) {
	var buf bytes.Buffer
	enc := NewEncoder[AnomalyRow](&buf)
	if err := enc.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.String(), "usage_event_id,reason,user_id,product,template_id,amount_usd,occurred_at\r\n"; got != want {
		t.Errorf("empty report = %q, want %q", got, want)
	}
}

func TestText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"=1+1", "'=1+1"},
		{"+1", "'+1"},
		{"-1", "'-1"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\tx", "'\tx"},
		{"\rx", "'\rx"},
		{"'quoted", "''quoted"},
		{"a=b", "a=b"},
		{"ünï", "ünï"},
	}
	for _, tt := range tests {
		if got := text(tt.in); got != tt.want {
			t.Errorf("text(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
