package jobs_test

import (
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/runpod/creditrecon/internal/s3test"
	"github.com/runpod/creditrecon/jobs"
	"github.com/runpod/creditrecon/reports"
)

// withFileReports sends the fixture's reports to a temporary folder and returns it.
func withFileReports(t *testing.T, f *fixture) string {
	t.Helper()
	dir := t.TempDir()
	sink, err := reports.OpenSink(context.Background(), "file://"+dir, reports.SinkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f.r.Sink = sink
	return dir
}

// readAll returns every file of a report folder, by name.
func readAll(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = b
	}
	return files
}

// csvSum adds up a money column of a CSV file.
func csvSum(t *testing.T, body []byte, column string) decimal.Decimal {
	t.Helper()
	records, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := -1
	for i, name := range records[0] {
		if name == column {
			col = i
		}
	}
	if col < 0 {
		t.Fatalf("no column %q in %v", column, records[0])
	}
	var sum decimal.Decimal
	for _, r := range records[1:] {
		sum = sum.Add(decimal.RequireFromString(r[col]))
	}
	return sum
}

func TestReportsTieOutToTheLedger(t *testing.T) {
	f := newFixture(t)
	dir := withFileReports(t, f)
	history(f, rand.New(rand.NewPCG(9, 9)))
	f.run("2026-01-20")
	f.run("2026-02-01")
	day := filepath.Join(dir, "dt=2026-01-31")
	files := readAll(t, day)
	man, err := reports.ReadManifest(context.Background(), f.r.Sink, "2026-01-31")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range man.Files {
		body := files[filepath.Base(file.Key)]
		sum := sha256.Sum256(body)
		if got := hex.EncodeToString(sum[:]); got != file.SHA256 || int64(len(body)) != file.Bytes {
			t.Errorf("%s: sha256 %s and %d bytes, manifest says %s and %d", file.Key, got, len(body), file.SHA256, file.Bytes)
		}
	}
	// The ledger, summed by SQL here, equals the manifest and the CSVs to the cent.
	var asOfT, toDate, referralToDate decimal.Decimal
	if err := f.db.QueryRow(`SELECT coalesce(sum(amount_usd) FILTER (WHERE as_of = '2026-02-01'), 0),
		coalesce(sum(amount_usd), 0), coalesce(sum(amount_usd) FILTER (WHERE program = 'referral'), 0)
		FROM credit_grants WHERE as_of <= '2026-02-01'`).Scan(&asOfT, &toDate, &referralToDate); err != nil {
		t.Fatal(err)
	}
	if asOfT.IsZero() {
		t.Fatal("no grants as of 2026-02-01: the test needs some")
	}
	var manAsOf, manToDate decimal.Decimal
	for _, tot := range man.ControlTotals {
		manAsOf, manToDate = manAsOf.Add(tot.GrantedAsOfUSD), manToDate.Add(tot.GrantedToDateUSD)
	}
	if !manAsOf.Equal(asOfT) || !manToDate.Equal(toDate) {
		t.Errorf("manifest granted %s as of and %s to date, ledger %s and %s", manAsOf, manToDate, asOfT, toDate)
	}
	if got := csvSum(t, files["grants.csv"], "amount_usd"); !got.Equal(asOfT) {
		t.Errorf("grants.csv sums to %s, ledger %s", got, asOfT)
	}
	if got := csvSum(t, files["referrers.csv"], "granted_usd"); !got.Equal(referralToDate) {
		t.Errorf("referrers.csv granted_usd sums to %s, ledger %s", got, referralToDate)
	}
	if got := csvSum(t, files["referrers.csv"], "referral_spend_usd"); !got.Equal(man.ControlTotals["referral"].UsageConsideredUSD) {
		t.Errorf("referrers.csv spend sums to %s, manifest %s", got, man.ControlTotals["referral"].UsageConsideredUSD)
	}
}

func TestExportIsByteIdenticalAfterLaterCutoffs(t *testing.T) {
	f := newFixture(t)
	dir := withFileReports(t, f)
	history(f, rand.New(rand.NewPCG(2, 8)))
	f.exec(`INSERT INTO usage_events (id, user_id, product, amount_usd, occurred_at) VALUES (99001, 'ghost', 'pod', 5, '2026-01-03')`)
	f.run("2026-01-15")
	day := filepath.Join(dir, "dt=2026-01-14")
	before := readAll(t, day)
	if len(before) != 9 {
		t.Fatalf("report set has %d files, want 9", len(before))
	}
	// Later cutoffs add grants and a later acceptance changes nothing before the cutoff's data.
	f.run("2026-01-25")
	f.run("2026-02-01")
	if err := os.RemoveAll(day); err != nil {
		t.Fatal(err)
	}
	if _, err := f.r.Export(context.Background(), date("2026-01-15")); err != nil {
		t.Fatal(err)
	}
	after := readAll(t, day)
	for name, body := range before {
		if string(after[name]) != string(body) {
			t.Errorf("%s differs after regeneration:\n%s\nvs\n%s", name, body, after[name])
		}
	}
	if _, err := f.r.Export(context.Background(), date("2026-01-16")); !errors.Is(err, jobs.ErrNoRun) {
		t.Errorf("export of a cutoff never run: err = %v, want ErrNoRun", err)
	}
}

func TestS3OutageKeepsGrantsAndExportCatchesUp(t *testing.T) {
	f := newFixture(t)
	s3 := s3test.New(t, "finance")
	s3.SetEnv(t)
	sink, err := reports.OpenSink(context.Background(), "s3://finance/creditrecon", reports.SinkOptions{
		ForcePathStyle: true, MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	f.r.Sink = sink
	history(f, rand.New(rand.NewPCG(4, 4)))

	s3.SetFaults(0, true)
	_, err = f.r.Run(context.Background(), jobs.RunOptions{AsOf: date("2026-02-01")})
	if err == nil || !strings.Contains(err.Error(), "grants are committed") {
		t.Fatalf("run during an S3 outage: err = %v, want a failure saying the grants are committed", err)
	}
	n := f.grantCount()
	if n == 0 {
		t.Fatal("the failed export lost the grants")
	}
	var status string
	if err := f.db.Get(&status, `SELECT status FROM recon_runs ORDER BY id DESC LIMIT 1`); err != nil {
		t.Fatal(err)
	}
	if status != jobs.StatusFailed {
		t.Errorf("ledger status %q, want failed", status)
	}
	if _, err := reports.ReadManifest(context.Background(), sink, "2026-01-31"); err == nil {
		t.Error("a manifest exists after a failed export")
	}

	s3.SetFaults(2, false) // flaky but recovering: retries get through
	man, err := f.r.Export(context.Background(), date("2026-02-01"))
	if err != nil {
		t.Fatalf("export after the outage: %v", err)
	}
	for _, file := range man.Files {
		rc, err := sink.Open(context.Background(), file.Key)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		if _, err := io.Copy(h, rc); err != nil {
			t.Fatal(err)
		}
		rc.Close()
		if got := hex.EncodeToString(h.Sum(nil)); got != file.SHA256 {
			t.Errorf("%s in S3: sha256 %s, manifest %s", file.Key, got, file.SHA256)
		}
	}
	if f.grantCount() != n {
		t.Errorf("export changed the grants: %d, want %d", f.grantCount(), n)
	}
	if s3.Injected() == 0 {
		t.Error("no fault was injected")
	}
}
