package jobs_test

import (
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/runpod/creditrecon/internal/summarytest"
	"github.com/runpod/creditrecon/reconcile"
	"github.com/runpod/creditrecon/reports"
)

// summaryHistory is history plus what makes every part of the summary page non-empty: a
// referrer short of referrals (accrued, in the pipeline), a minimum grant of 2.00 (amounts
// waiting), nightly runs (a trend), and a refund after a template was paid (clawback due).
func summaryHistory(t *testing.T) (*fixture, string) {
	f := newFixture(t)
	dir := withFileReports(t, f)
	seed, err := os.ReadFile("../terms/seed.yaml")
	if err != nil {
		t.Fatal(err)
	}
	yaml := strings.Replace(string(seed), `min_grant_usd: "0.01"`, `min_grant_usd: "2.00"`, 1)
	f.useTerms(yaml)
	sum := sha256.Sum256([]byte(yaml))
	f.r.Config.Terms.File, f.r.Config.Terms.SHA256 = "terms/seed.yaml", hex.EncodeToString(sum[:])

	history(f, rand.New(rand.NewPCG(13, 13)))
	f.referrals("short", "short_u", 20, "2026-01-02")
	for i := 1; i <= 20; i++ {
		f.usage(fmt.Sprintf("short_u%d", i), "pod", "", "100", 0, "2026-01-05")
	}
	for day := 15; day <= 31; day++ {
		f.run(fmt.Sprintf("2026-01-%02d", day))
	}
	f.usage("ref1_u1", "pod", "tpl1", "-2500", 0, "2026-01-31T12:00:00Z")
	f.run("2026-02-01")
	f.run("2026-02-02")
	return f, dir
}

func TestSummaryPageEqualsManifestAndLedger(t *testing.T) {
	f, dir := summaryHistory(t)
	day := filepath.Join(dir, "dt=2026-02-01")
	files := readAll(t, day)
	page, manifest := files["summary.html"], files["manifest.json"]
	if len(files) != 9 || page == nil {
		t.Fatalf("report set has %d files, want the 7 CSVs, summary.html and manifest.json", len(files))
	}

	// Every marked figure equals the manifest's.
	n, problems, err := summarytest.Compare(page, manifest)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
	if n < 30 {
		t.Errorf("compared %d figures, want at least 30", n)
	}

	// The manifest's liability is what the CSVs say, added up independently.
	var man reports.Manifest
	if err := json.Unmarshal(manifest, &man); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		program reconcile.Program
		file    string
	}{{reconcile.Referral, "referrers.csv"}, {reconcile.Template, "templates.csv"}} {
		accrued, clawback := liabilityOfCSV(t, files[c.file])
		l := man.Liability[string(c.program)]
		if !l.AccruedUSD.Equal(accrued) || !l.ClawbackDueUSD.Equal(clawback) {
			t.Errorf("%s liability: accrued %s, clawback due %s; %s says %s and %s", c.program, l.AccruedUSD, l.ClawbackDueUSD,
				c.file, accrued, clawback)
		}
	}
	t.Logf("liability %+v", man.Liability)
	if l := man.Liability["referral"]; !l.AccruedUSD.Equal(decimal.NewFromInt(40)) || l.AccruedAccounts != 1 {
		t.Errorf("referral accrued %s in %d accounts, want 40.00 in 1 (the referrer short of referrals)", l.AccruedUSD, l.AccruedAccounts)
	}
	var waiting decimal.Decimal
	var clawback decimal.Decimal
	for _, l := range man.Liability {
		waiting, clawback = waiting.Add(l.WaitingUSD), clawback.Add(l.ClawbackDueUSD)
	}
	if !waiting.IsPositive() || !clawback.IsPositive() {
		t.Errorf("waiting %s, clawback due %s: the history should have both", waiting, clawback)
	}

	// SUMMARY_TEST_KEEP=FILE keeps the page, to open it in a browser.
	if out := os.Getenv("SUMMARY_TEST_KEEP"); out != "" {
		if err := os.WriteFile(out, page, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	doc, err := summarytest.Parse(page)
	if err != nil {
		t.Fatal(err)
	}
	// One mark per business date and program with grants in the 90 days, with the ledger's sum.
	want := map[string]string{}
	rows, err := f.db.Query(`SELECT to_char(as_of - interval '1 day', 'YYYY-MM-DD'), program, sum(amount_usd)::text
		FROM credit_grants WHERE as_of > timestamptz '2026-02-02' - interval '90 days' AND as_of <= '2026-02-02' GROUP BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var date, program, sum string
		if err := rows.Scan(&date, &program, &sum); err != nil {
			t.Fatal(err)
		}
		want[program+" "+date] = sum
	}
	rows.Close()
	got := map[string]string{}
	for _, m := range summarytest.Elements(doc, "rect", "mark") {
		series, _ := summarytest.Attr(m.Parent, "data-series")
		day, _ := summarytest.Attr(m, "data-day")
		value, _ := summarytest.Attr(m, "data-value")
		got[series+" "+day] = value
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || len(want) < 10 {
		t.Errorf("chart marks\n%v\nwant the ledger's\n%v", got, want)
	}

	text := summarytest.Text(doc)
	var topID string
	var topSum decimal.Decimal
	if err := f.db.QueryRow(`SELECT beneficiary_id, sum(amount_usd) FROM credit_grants WHERE as_of <= '2026-02-02'
		GROUP BY 1 ORDER BY 2 DESC, beneficiary_id COLLATE "C" LIMIT 1`).Scan(&topID, &topSum); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"✓ Ties out", "20 referrals, needs 25; not accepted into the program"} {
		if !strings.Contains(text, s) {
			t.Errorf("the page does not say %q", s)
		}
	}
	// The first of the top beneficiaries is the ledger's.
	var top []string
	for _, section := range summarytest.Elements(doc, "section", "") {
		if id, _ := summarytest.Attr(section, "id"); id == "top" {
			for _, td := range summarytest.Elements(section, "td", "")[:5] {
				top = append(top, summarytest.Text(td))
			}
		}
	}
	if len(top) != 5 || top[0] != "1" || top[1] != topID || summarytest.Plain(top[4]) != topSum.StringFixed(2) {
		t.Errorf("the first top beneficiary is %q, want %s with %s", top, topID, topSum.StringFixed(2))
	}

	// Re-exporting, also after a later cutoff, rewrites the same page and manifest.
	f.run("2026-02-03")
	if err := os.RemoveAll(day); err != nil {
		t.Fatal(err)
	}
	if _, err := f.r.Export(context.Background(), date("2026-02-02")); err != nil {
		t.Fatal(err)
	}
	again := readAll(t, day)
	for _, name := range []string{"summary.html", "manifest.json"} {
		if string(again[name]) != string(files[name]) {
			t.Errorf("%s differs after re-export", name)
		}
	}
}

// liabilityOfCSV adds up, from referrers.csv or templates.csv, what the accounts not eligible yet
// have earned beyond what they were granted, and the clawback due.
func liabilityOfCSV(t *testing.T, body []byte) (accrued, clawback decimal.Decimal) {
	t.Helper()
	records, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, name := range records[0] {
		col[name] = i
	}
	for _, r := range records[1:] {
		money := func(name string) decimal.Decimal { return decimal.RequireFromString(r[col[name]]) }
		clawback = clawback.Add(money("clawback_due_usd"))
		if r[col["status"]] == reconcile.StatusAccrued {
			if a := reconcile.FloorToCent(money("earned_usd")).Sub(money("granted_usd")); a.IsPositive() {
				accrued = accrued.Add(a)
			}
		}
	}
	return accrued, clawback
}
