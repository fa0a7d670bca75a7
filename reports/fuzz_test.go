package reports

import (
	"bytes"
	"context"
	"encoding/csv"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/runpod/creditrecon/internal/s3test"
)

// FuzzOpenSinkURL: OpenSink never panics and refuses with an error naming REPORTS_URL. It makes
// no request: s3:// sinks are opened against a local endpoint that counts requests, with fake
// credentials. For file:// URLs, which the fuzzer only gets to build under a temporary folder,
// OpenSink creates nothing, and every key the sink accepts stays inside its directory: writing
// it creates exactly that file there.
func FuzzOpenSinkURL(f *testing.F) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		w.WriteHeader(http.StatusForbidden)
	}))
	f.Cleanup(srv.Close)
	s3test.SetEnv(f, srv.URL, "")
	for _, s := range []string{"s3://bucket/prefix", "s3://", "s3:///p", "s3://b/../up", "s3://user:pw@b/p", "ftp://x", "",
		"::not a url", "reports", "s3://b/p?x=1", "S3://B/P", "s3://b/a//b", "s3://b/%2e%2e/x", "http://example.com"} {
		f.Add(uint8(0), s, "dt=2026-01-31/grants.csv")
	}
	for _, s := range []string{"", "reports", "a/../..", "../escape", "%2e%2e/%2e%2e", "with%20space", "x?q=1", "x#frag", "a/./b/"} {
		for _, key := range []string{"dt=2026-01-31/grants.csv", "../x", "/abs", "a/../../b", ".", "a\\b", "a//b", "dt=x/.hidden"} {
			f.Add(uint8(1), s, key)
		}
	}
	f.Fuzz(func(t *testing.T, mode uint8, s, key string) {
		ctx := context.Background()
		if mode%2 == 0 {
			if u, err := url.Parse(s); err == nil && strings.EqualFold(u.Scheme, "file") {
				return // file URLs are built under a temporary folder below, never from raw input
			}
			sink, err := OpenSink(ctx, s, SinkOptions{})
			if err != nil {
				if !strings.Contains(err.Error(), "REPORTS_URL") {
					t.Errorf("OpenSink(%q): error %q does not name REPORTS_URL", s, err)
				}
			} else {
				// Presigning is local computation: still no request.
				_, _ = sink.Link(ctx, key, time.Minute)
			}
			if n := requests.Load(); n != 0 {
				t.Fatalf("OpenSink(%q) made %d requests, want none", s, n)
			}
			return
		}

		root := t.TempDir()
		raw := "file://" + root + "/" + s
		sink, err := OpenSink(ctx, raw, SinkOptions{})
		if err != nil {
			if !strings.Contains(err.Error(), "REPORTS_URL") {
				t.Errorf("OpenSink(%q): error %q does not name REPORTS_URL", raw, err)
			}
			return
		}
		if entries, _ := os.ReadDir(root); len(entries) != 0 {
			t.Fatalf("OpenSink(%q) created %d entries in %s, want none", raw, len(entries), root)
		}
		probe, err := sink.Link(ctx, "probe", 0)
		if err != nil {
			t.Fatalf("Link(probe): %v", err)
		}
		dir := filepath.Dir(probe)
		p, err := sink.Link(ctx, key, 0)
		if err != nil {
			return // the key is refused
		}
		if !inside(dir, p) {
			t.Fatalf("OpenSink(%q): key %q maps to %s, outside the sink's directory %s", raw, key, p, dir)
		}
		if !inside(root, dir) {
			return // the URL names a directory outside the temporary folder: write nothing there
		}
		obj, err := sink.Create(ctx, key)
		if err != nil {
			return // e.g. a key naming an existing directory, or too long a name
		}
		defer obj.Abort()
		body := []byte("fuzz " + key)
		if _, err := obj.Write(body); err != nil {
			t.Fatal(err)
		}
		if err := obj.Commit(); err != nil {
			return
		}
		if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, body) {
			t.Errorf("key %q: the file at %s holds %q, %v; want %q", key, p, got, err, body)
		}
	})
}

// inside reports whether path p is dir or below it.
func inside(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../") && !filepath.IsAbs(rel)
}

// FuzzCSVRoundTrip: arbitrary strings in the text and ID fields of every row type encode to a CSV
// that encoding/csv parses back to a header and one record of the same field count, whose text
// cells never start with a formula character and, after removing the one leading quote of a
// neutralised cell, are the strings given — without their carriage returns, the caveat
// reports/doc.go documents (encoding/csv's writer drops a lone CR, and a CRLF reads back as LF).
func FuzzCSVRoundTrip(f *testing.F) {
	for _, s := range [][4]string{
		{"alice", "tpl_llm", "referral:alice:0.00", "granted"},
		{"a,b", `q"uote`, "new\nline", "crlf\r\nx"},
		{"=SUM(A1)", "+1", "-2", "@cmd"},
		{"\ttab", "\rcr", "'quoted", " space"},
		{"ünïcødé 🚀", "日本語", "\xff\xfe", `\.`},
		{"", "\r", "\n", `"`},
	} {
		f.Add(s[0], s[1], s[2], s[3], int64(1234))
	}
	f.Fuzz(func(t *testing.T, a, b, c, d string, n int64) {
		cents := decimal.New(n%1_000_000_000, -2)
		at := time.Unix(n%253402300799, 0).UTC()
		roundTrip(t, GrantRow{GrantID: n, Program: a, BeneficiaryID: b, AmountUSD: cents, AsOf: at, IdempotencyKey: c,
			AccountID: d, TemplateID: b, ReferredUserID: c, Role: a, GrantedBeforeUSD: cents, EarnedUSD: cents, RunID: n, CreatedAt: at},
			map[string]string{"program": a, "beneficiary_id": b, "idempotency_key": c, "account_id": d, "template_id": b,
				"referred_user_id": c, "role": a}, nil)
		roundTrip(t, ReferrerRow{ReferrerID: a, Referrals: n, ReferralSpendUSD: cents, EarnedUSD: cents, TargetUSD: cents,
			GrantedUSD: cents, ClawbackDueUSD: cents, Status: b, StatusReason: c},
			map[string]string{"referrer_id": a, "status": b, "status_reason": c}, nil)
		roundTrip(t, TemplateRow{TemplateID: b, CreatorID: a, RuntimeSeconds: n, TemplateSpendUSD: cents, EarnedUSD: cents,
			TargetUSD: cents, GrantedUSD: cents, ClawbackDueUSD: cents, Status: d, StatusReason: c},
			map[string]string{"template_id": b, "creator_id": a, "status": d, "status_reason": c}, nil)
		roundTrip(t, ServerlessRow{ReferredUserID: c, ReferrerID: d, ServerlessSpendUSD: cents, GrantedUSD: cents,
			ReferrerGrantedUSD: cents, ReferredGrantedUSD: cents, Status: a},
			map[string]string{"referred_user_id": c, "referrer_id": d, "status": a}, nil)
		roundTrip(t, AnomalyRow{UsageEventID: n, Reason: a, UserID: b, Product: c, TemplateID: d, AmountUSD: a, OccurredAt: at},
			map[string]string{"reason": a, "user_id": b, "product": c, "template_id": d},
			map[string]string{"amount_usd": a}) // the database's numeric text: never neutralised
	})
}

// roundTrip encodes row, parses it back and checks its text cells (un-neutralised) and raw
// cells (as written) against want.
func roundTrip[R Row](t *testing.T, row R, text, raw map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	enc := NewEncoder[R](&buf)
	if err := enc.Encode(row); err != nil {
		t.Fatalf("encode %T: %v", row, err)
	}
	if err := enc.Flush(); err != nil {
		t.Fatalf("flush %T: %v", row, err)
	}
	records, err := csv.NewReader(bytes.NewReader(buf.Bytes())).ReadAll()
	if err != nil {
		t.Fatalf("%T: encoding/csv cannot parse %q: %v", row, buf.Bytes(), err)
	}
	header := row.header()
	if len(records) != 2 || len(records[0]) != len(header) || len(records[1]) != len(header) {
		t.Fatalf("%T: parsed %d records of %v fields from %q, want a header and one row of %d fields",
			row, len(records), fieldCounts(records), buf.Bytes(), len(header))
	}
	cells := map[string]string{}
	for i, name := range records[0] {
		if name != header[i] {
			t.Fatalf("%T: header %q, want %q", row, records[0], header)
		}
		cells[name] = records[1][i]
	}
	noCR := func(s string) string { return strings.ReplaceAll(s, "\r", "") }
	for col, want := range text {
		cell := cells[col]
		if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
			t.Errorf("%T %s: cell %q of %q starts with a formula character", row, col, cell, want)
		}
		if got := strings.TrimPrefix(cell, "'"); got != noCR(want) {
			t.Errorf("%T %s: %q reads back as %q (cell %q), want %q", row, col, want, got, cell, noCR(want))
		}
	}
	for col, want := range raw {
		if got := cells[col]; got != noCR(want) {
			t.Errorf("%T %s: %q reads back as %q, want %q", row, col, want, got, noCR(want))
		}
	}
}

func fieldCounts(records [][]string) []int {
	var n []int
	for _, r := range records {
		n = append(n, len(r))
	}
	return n
}
