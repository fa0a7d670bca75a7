package drill

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"

	"github.com/runpod/creditrecon/internal/exitcode"
	"github.com/runpod/creditrecon/internal/s3test"
)

// s3Faults is the S3-compatible server the program reports to: s3test's server (gofakes3 over
// HTTPS, which can fail the first attempts of every request) behind a handler, served on its own
// HTTPS listener, that adds the faults s3test lacks: a delay on every request, every request
// failing with a status of the trial's choosing, failing multipart part uploads from a part
// number on, and failing every upload (PUT, POST) once a budget of request body bytes is spent.
type s3Faults struct {
	srv    *s3test.Server
	url    string
	caFile string
	none   string // an empty path for the SDK's shared config files

	mu            sync.Mutex
	delay         time.Duration
	failAll       bool
	failPartsFrom int   // fail UploadPart requests with partNumber >= this; 0: off
	budget        int64 // fail uploads once this many body bytes were received; < 0: off
	retryable     bool  // fail with 500 InternalError (the SDK retries) instead of 403 AccessDenied
	received      int64
	injected      int
}

// arm sets the faults of a trial: every request failing, or part uploads from a part number on,
// or uploads beyond a byte budget (-1: none); retryable picks 500s, which the SDK retries with
// backoff (the sink allows 10 attempts, about 25 s per request), over 403s, which fail at once.
func (f *s3Faults) arm(all bool, partsFrom int, budget int64, retryable bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failAll, f.failPartsFrom, f.budget, f.retryable = all, partsFrom, budget, retryable
}

func newS3Faults(t *testing.T) *s3Faults {
	t.Helper()
	f := &s3Faults{srv: s3test.New(t, "finance"), budget: -1}
	ts := httptest.NewTLSServer(f)
	t.Cleanup(ts.Close)
	f.url = ts.URL
	dir := t.TempDir()
	f.caFile, f.none = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "none")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	if err := os.WriteFile(f.caFile, ca, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// env is the AWS SDK's standard configuration pointing at the server, as production sets it.
// (AWS_MAX_ATTEMPTS would not help: the SDK ignores it when the caller sets its own retryer, as
// the sink does with 10 attempts.)
func (f *s3Faults) env() []string {
	return []string{"AWS_ENDPOINT_URL_S3=" + f.url, "AWS_CA_BUNDLE=" + f.caFile,
		"AWS_ACCESS_KEY_ID=drill-access-key", "AWS_SECRET_ACCESS_KEY=drill-secret-key", "AWS_REGION=us-east-1",
		"AWS_CONFIG_FILE=" + f.none, "AWS_SHARED_CREDENTIALS_FILE=" + f.none, "AWS_EC2_METADATA_DISABLED=true",
		"S3_FORCE_PATH_STYLE=true"}
}

func (f *s3Faults) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	delay, failAll, failPartsFrom, budget := f.delay, f.failAll, f.failPartsFrom, f.budget
	f.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	if failAll {
		f.fail(w, r)
		return
	}
	if r.Method == http.MethodPut || r.Method == http.MethodPost {
		part, _ := strconv.Atoi(r.URL.Query().Get("partNumber"))
		if failPartsFrom > 0 && part >= failPartsFrom {
			f.fail(w, r)
			return
		}
		if budget >= 0 {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			f.mu.Lock()
			f.received += int64(len(body))
			over := f.received > budget
			f.mu.Unlock()
			if over {
				f.fail(w, r)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
	}
	f.srv.ServeHTTP(w, r)
}

func (f *s3Faults) fail(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	f.mu.Lock()
	f.injected++
	status, code := http.StatusForbidden, "AccessDenied"
	if f.retryable {
		status, code = http.StatusInternalServerError, "InternalError"
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>injected fault</Message></Error>`, code)
}

// clear ends every fault.
func (f *s3Faults) clear() {
	f.srv.SetFaults(0, false)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.delay, f.failAll, f.failPartsFrom, f.budget, f.received, f.retryable = 0, false, 0, -1, 0, false
}

// faults counts the requests failed so far, by either layer.
func (f *s3Faults) faults() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.injected + f.srv.Injected()
}

// objects returns the objects under prefix, by name relative to it.
func (f *s3Faults) objects(t testing.TB, prefix string) map[string][]byte {
	t.Helper()
	list, err := f.srv.Backend.ListBucket(f.srv.Bucket, &gofakes3.Prefix{HasPrefix: true, Prefix: prefix}, gofakes3.ListBucketPage{})
	if err != nil {
		t.Fatalf("list s3://%s/%s: %v", f.srv.Bucket, prefix, err)
	}
	out := map[string][]byte{}
	for _, c := range list.Contents {
		obj, err := f.srv.Backend.GetObject(f.srv.Bucket, c.Key, nil)
		if err != nil {
			t.Fatalf("get %s: %v", c.Key, err)
		}
		b, err := io.ReadAll(obj.Contents)
		obj.Contents.Close()
		if err != nil {
			t.Fatalf("read %s: %v", c.Key, err)
		}
		out[strings.TrimPrefix(c.Key, prefix)] = b
	}
	return out
}

// readReports returns the report files of the business date in a file:// reports directory.
func readReports(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	dir = filepath.Join(dir, "dt="+businessDate)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

// s3Mode is one kind of S3 fault: arm sets it up before the run and says whether the run must
// fail (exit 1) or succeed despite it.
type s3Mode func(tr *trial, f *s3Faults) (mustFail bool, what string)

// s3Scenario runs the nightly job against a faulty S3, and checks: the run fails with exit 1
// saying its grants are committed (or succeeds despite a recoverable fault); no grant is lost;
// no manifest vouches for an incomplete report set; `creditrecon export` after the fault clears
// writes report files byte-identical to an export of the same database to a file:// folder,
// and equal to the clean reference run's reports where two databases must agree; a plain run then
// writes nothing.
func (w *world) s3Scenario(t *testing.T, tl *tally, tpl *template, ref *reference, arm s3Mode) {
	f := newS3Faults(t)
	tl.add(func() { tl.reports = max(tl.reports, 0) })
	trials(t, tl, otherTrials(), tpl, ref, func(tr *trial) {
		prefix := fmt.Sprintf("%s/%s/", tl.name, path.Base(tr.t.Name()))
		env := tr.env("s3://"+f.srv.Bucket+"/"+strings.TrimSuffix(prefix, "/"), f.env()...)
		before := f.faults()
		mustFail, what := arm(tr, f)
		p := run(tr.t, env, "run", "--as-of", cutoff)
		f.clear()
		injected := f.faults() - before
		tr.tl.fault(injected)
		tr.tl.exit(p.code)
		switch {
		case p.code == exitcode.Failed && !strings.Contains(p.stderr.String(), "grants are committed"):
			tr.t.Errorf("the run failed without saying its grants are committed: %s", p)
		case p.code == exitcode.Failed && !mustFail, p.code == exitcode.OK && mustFail && injected > 0,
			p.code != exitcode.OK && p.code != exitcode.Failed:
			tr.t.Errorf("%s (%d requests failed): %s", what, injected, p)
		}
		tr.tl.note(fmt.Sprintf("%s: exit %d", what, p.code))
		mismatches := 0
		if _, ok := f.objects(tr.t, prefix)["dt="+businessDate+"/manifest.json"]; ok && p.code != exitcode.OK {
			mismatches++
			tr.t.Errorf("the failed run left a manifest that vouches for an incomplete report set")
		}
		tr.settled()
		tr.complete()

		// The fault has cleared: export the cutoff again, and the same database to a folder.
		if e := run(tr.t, env, "export", "--as-of", cutoff); e.code != exitcode.OK {
			tr.t.Fatalf("export after the fault cleared: %s", e)
		}
		dir := tr.t.TempDir()
		if e := run(tr.t, dbEnv(tr.dsn, "file://"+dir, tpl.env...), "export", "--as-of", cutoff); e.code != exitcode.OK {
			tr.t.Fatalf("export to a folder: %s", e)
		}
		inS3 := f.objects(tr.t, prefix+"dt="+businessDate+"/")
		mismatches += sameReports(tr.t, "S3 after the fault vs a folder export of the same database", inS3, readReports(tr.t, dir), true)
		mismatches += sameReports(tr.t, "this database vs the clean reference run's", readReports(tr.t, dir), readReports(tr.t, ref.reportsDir), false)
		tr.tl.add(func() { tr.tl.reports += mismatches })

		again, _ := tr.converge(env, "run", "--as-of", cutoff)
		if !strings.Contains(again.stdout.String(), ": 0 grants, 0.00 USD") {
			tr.t.Errorf("the run after the S3 fault wrote grants (some were lost before): %s", again)
		}
		tr.final(env)
		tr.t.Logf("%s: %d requests failed, run exit %d after %s; %d report objects compared", what, injected, p.code,
			p.elapsed.Round(time.Millisecond), len(inS3))
	})
}

// retryable says whether a trial's faults are 500s, retried by the SDK with backoff (about 25 s
// before a request fails for good), or 403s, which fail at once: 500s on every fourth trial (the
// first of s3-down, the fourth, eighth… of the others), so that the short form pays the retries
// once.
func retryable(tr *trial, first bool) bool {
	n := tr.index
	if first {
		return n%4 == 0
	}
	return n%4 == 3
}

func faultKind(retry bool) string {
	if retry {
		return "500s, retried"
	}
	return "403s"
}

// s3Down: every request fails while the run exports.
func (w *world) s3Down(t *testing.T, tl *tally) {
	w.s3Scenario(t, tl, w.tpl, w.ref, func(tr *trial, f *s3Faults) (bool, string) {
		retry := retryable(tr, true)
		f.arm(true, 0, -1, retry)
		return true, "every request failing (" + faultKind(retry) + ")"
	})
}

// s3SlowFlaky: every request waits 50 to 250 ms and fails its first attempt (s3test's 500 or
// 503): the SDK's retries get through and the run succeeds.
func (w *world) s3SlowFlaky(t *testing.T, tl *tally) {
	w.s3Scenario(t, tl, w.tpl, w.ref, func(tr *trial, f *s3Faults) (bool, string) {
		d := 50*time.Millisecond + tr.uniform(200*time.Millisecond)
		f.mu.Lock()
		f.delay = d
		f.mu.Unlock()
		f.srv.SetFaults(1, false)
		return false, "slow and flaky"
	})
}

// s3MidUpload: uploads start failing, for good, once a number of body bytes drawn uniformly
// below the size of the whole report set has been received: the export stops part way, some
// files written and others not.
func (w *world) s3MidUpload(t *testing.T, tl *tally) {
	var total int64
	for _, b := range readReports(t, w.ref.reportsDir) {
		total += int64(len(b))
	}
	w.s3Scenario(t, tl, w.tpl, w.ref, func(tr *trial, f *s3Faults) (bool, string) {
		retry := retryable(tr, false)
		f.arm(false, 0, tr.rng.Int64N(total), retry)
		return true, "uploads failing part way (" + faultKind(retry) + ")"
	})
}

// ghostRows adds 120,000 usage rows of unknown users with long ids: anomalies that earn nothing
// (the ledger is unchanged) but make anomalies.csv about 19 MiB, so that it is uploaded in three
// 8 MiB multipart parts. The runs on this data allow a large anomaly share.
const ghostRows = `INSERT INTO usage_events (id, user_id, product, amount_usd, runtime_seconds, occurred_at)
SELECT 100000000 + g, 'ghost-' || md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text), 'storage', 0.01, 0,
       timestamptz '2025-06-01 00:00Z' + g * interval '1 second'
  FROM generate_series(1, 120000) g`

// s3MidMultipart: on a population whose anomalies.csv is uploaded in parts, the part uploads
// from part 2 or 3 on fail: the multipart upload is aborted mid-way.
func (w *world) s3MidMultipart(t *testing.T, tl *tally) {
	tpl := w.tpl.derive(t, ghostRows, "CREDITRECON_MAX_ANOMALY_SHARE=0.5")
	ref := newReference(t, tpl, "run", "--as-of", cutoff)
	if c := compare(ref.ledger, w.ref.ledger); c.differs {
		t.Fatalf("the anomalies changed the clean ledger:\n%s", c.detail)
	}
	size := len(readReports(t, ref.reportsDir)["anomalies.csv"])
	const part = 8 << 20
	if size <= 2*part {
		t.Fatalf("anomalies.csv is %d bytes: want more than two 8 MiB parts", size)
	}
	t.Logf("anomalies.csv: %d bytes, %d parts of 8 MiB", size, (size+part-1)/part)
	w.s3Scenario(t, tl, tpl, ref, func(tr *trial, f *s3Faults) (bool, string) {
		from, retry := 2+tr.rng.IntN(2), retryable(tr, false)
		f.arm(false, from, -1, retry)
		return true, fmt.Sprintf("parts %d+ failing (%s)", from, faultKind(retry))
	})
}

// sameReports compares two report sets file by file and returns the number of files that
// differ. exact compares every byte. Otherwise the sets come from two databases holding the same
// data, where only what identifies rows of one database may differ: grants.csv is compared
// without grant_id, run_id and created_at, and manifest.json without run_id and grants.csv's
// byte size and hash; everything else (the other CSVs, control totals, row counts, parameters)
// must be equal byte for byte.
func sameReports(t testing.TB, what string, got, want map[string][]byte, exact bool) int {
	t.Helper()
	names := map[string]bool{}
	for n := range got {
		names[n] = true
	}
	for n := range want {
		names[n] = true
	}
	diffs := 0
	for n := range names {
		g, gok := got[n]
		w, wok := want[n]
		var same bool
		switch {
		case !gok || !wok:
			t.Errorf("%s: %s is only on one side (%t, %t)", what, n, gok, wok)
			diffs++
			continue
		case exact:
			same = bytes.Equal(g, w)
		case n == "grants.csv":
			same = slices.EqualFunc(withoutColumns(t, g), withoutColumns(t, w), slices.Equal)
		case n == "manifest.json":
			same = reflect.DeepEqual(comparableManifest(t, g), comparableManifest(t, w))
		default:
			same = bytes.Equal(g, w)
		}
		if !same {
			diffs++
			t.Errorf("%s: %s differs (%d and %d bytes)", what, n, len(g), len(w))
		}
	}
	if len(names) < 6 {
		t.Errorf("%s: %d files, want the five CSVs and the manifest", what, len(names))
		diffs++
	}
	return diffs
}

// withoutColumns parses a grants.csv without the columns that identify rows of one database.
func withoutColumns(t testing.TB, b []byte) [][]string {
	t.Helper()
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil || len(rows) == 0 {
		t.Fatalf("parse grants.csv: %v", err)
	}
	var keep []int
	for i, h := range rows[0] {
		if h != "grant_id" && h != "run_id" && h != "created_at" {
			keep = append(keep, i)
		}
	}
	out := make([][]string, len(rows))
	for r, row := range rows {
		for _, i := range keep {
			out[r] = append(out[r], row[i])
		}
	}
	return out
}

// comparableManifest decodes a manifest without run_id and grants.csv's size and hash.
func comparableManifest(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("parse manifest.json: %v", err)
	}
	delete(m, "run_id")
	files, _ := m["files"].([]any)
	for _, f := range files {
		if f, ok := f.(map[string]any); ok && strings.HasSuffix(fmt.Sprint(f["key"]), "/grants.csv") {
			delete(f, "bytes")
			delete(f, "sha256")
		}
	}
	return m
}
