package reports

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

const testBucket = "finance-reports"

// fakeS3 is an in-process S3-compatible server (gofakes3 over real HTTPS, as S3 is reached
// in production) behind a handler that records request headers and injects 500/503 faults.
type fakeS3 struct {
	backend *s3mem.Backend
	server  http.Handler
	url     string
	caFile  string       // PEM of the server's certificate, for AWS_CA_BUNDLE
	client  *http.Client // a plain net/http client that trusts the server

	mu        sync.Mutex
	requests  []recorded
	attempts  map[string]int // by method and URI: retries of a request share both
	failFirst int            // fail the first failFirst attempts of every request
	failAll   bool
	injected  int
}

type recorded struct {
	method, uri string
	header      http.Header
}

func newFakeS3(t *testing.T) *fakeS3 {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket(testBucket); err != nil {
		t.Fatal(err)
	}
	f := &fakeS3{backend: backend, server: gofakes3.New(backend).Server(), attempts: map[string]int{}}
	srv := httptest.NewTLSServer(f)
	t.Cleanup(srv.Close)
	f.url, f.client = srv.URL, srv.Client()
	f.caFile = filepath.Join(t.TempDir(), "ca.pem")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(f.caFile, ca, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fakeS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, recorded{method: r.Method, uri: r.RequestURI, header: r.Header.Clone()})
	id := r.Method + " " + r.RequestURI
	f.attempts[id]++
	attempt := f.attempts[id]
	fail := f.failAll || attempt <= f.failFirst
	if fail {
		f.injected++
	}
	f.mu.Unlock()
	if !fail {
		f.server.ServeHTTP(w, r)
		return
	}
	_, _ = io.Copy(io.Discard, r.Body)
	status, code := http.StatusInternalServerError, "InternalError"
	if attempt%2 == 0 {
		status, code = http.StatusServiceUnavailable, "ServiceUnavailable"
	}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>injected fault</Message></Error>`, code)
}

func (f *fakeS3) set(failFirst int, failAll bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failFirst, f.failAll = failFirst, failAll
	clear(f.attempts)
}

func (f *fakeS3) recorded() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

// setAWSEnv points the SDK's standard chain at endpoint with static test credentials and
// keeps it away from the machine's shared config. An empty caFile leaves AWS_CA_BUNDLE as
// the machine sets it.
func setAWSEnv(t *testing.T, endpoint, caFile string) {
	t.Helper()
	if caFile != "" {
		t.Setenv("AWS_CA_BUNDLE", caFile)
	}
	none := filepath.Join(t.TempDir(), "none")
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_S3":         endpoint,
		"AWS_ACCESS_KEY_ID":           "test-access-key",
		"AWS_SECRET_ACCESS_KEY":       "test-secret-key",
		"AWS_REGION":                  "us-east-1",
		"AWS_CONFIG_FILE":             none,
		"AWS_SHARED_CREDENTIALS_FILE": none,
		"AWS_EC2_METADATA_DISABLED":   "true",
	} {
		t.Setenv(k, v)
	}
}

// open returns the sink of rawURL through OpenSink, with the SDK configured by environment
// as in production.
func (f *fakeS3) open(t *testing.T, rawURL string, opts SinkOptions) Sink {
	t.Helper()
	setAWSEnv(t, f.url, f.caFile)
	s, err := OpenSink(context.Background(), rawURL, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testS3Options uses the smallest part size S3 allows, to exercise multipart uploads with
// small objects, and short backoffs to keep fault tests fast.
func testS3Options() SinkOptions {
	return SinkOptions{ForcePathStyle: true, PartSize: minPartSize, MaxAttempts: 4, MaxBackoff: 5 * time.Millisecond}
}

func TestS3HeadersAndChecksums(t *testing.T) {
	f := newFakeS3(t)
	opts := testS3Options()
	opts.SSEKMSKeyID = "arn:aws:kms:us-east-1:111122223333:key/test"
	s := f.open(t, "s3://"+testBucket+"/reports", opts)
	ctx := context.Background()
	big := bigObject()
	if err := writeObject(ctx, s, "dt=2026-02-04/small.csv", []byte("a,b\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := writeObject(ctx, s, "dt=2026-02-04/big.bin", big); err != nil {
		t.Fatal(err)
	}

	var puts, parts, creates int
	for _, r := range f.recorded() {
		if r.header.Get("X-Amz-Trailer") != "" || strings.Contains(r.header.Get("Content-Encoding"), "aws-chunked") {
			t.Errorf("%s %s sent an aws-chunked body with a trailer", r.method, r.uri)
		}
		isPart := strings.Contains(r.uri, "partNumber=")
		isCreate := r.method == http.MethodPost && strings.Contains(r.uri, "?uploads")
		isPut := r.method == http.MethodPut && !isPart
		switch {
		case isPart:
			parts++
			continue // SSE is set when the multipart upload is created
		case isCreate:
			creates++
		case isPut:
			puts++
		default:
			continue
		}
		if got := r.header.Get("X-Amz-Server-Side-Encryption"); got != "aws:kms" {
			t.Errorf("%s %s: x-amz-server-side-encryption = %q, want aws:kms", r.method, r.uri, got)
		}
		if got := r.header.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id"); got != opts.SSEKMSKeyID {
			t.Errorf("%s %s: KMS key id = %q, want %q", r.method, r.uri, got, opts.SSEKMSKeyID)
		}
	}
	if puts != 1 || creates != 1 || parts != 3 {
		t.Errorf("saw %d PutObject, %d CreateMultipartUpload, %d UploadPart; want 1, 1, 3", puts, creates, parts)
	}

	for _, expires := range []time.Duration{0, 8 * 24 * time.Hour} {
		if _, err := s.Link(ctx, "dt=2026-02-04/big.bin", expires); err == nil {
			t.Errorf("Link with expiry %s succeeded, want an error", expires)
		}
	}

	// The prefix of the URL is where the objects land in the bucket.
	obj, err := f.backend.HeadObject(testBucket, "reports/dt=2026-02-04/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	if obj.Size != int64(len(big)) {
		t.Errorf("server stored %d bytes, want %d", obj.Size, len(big))
	}
	if got := obj.Metadata["Content-Type"]; !strings.HasPrefix(got, "application/octet-stream") {
		t.Errorf("content type %q", got)
	}
}

func TestS3RetriesFaults(t *testing.T) {
	f := newFakeS3(t)
	s := f.open(t, "s3://"+testBucket, testS3Options())
	f.set(2, false)
	big := bigObject()
	if err := writeObject(context.Background(), s, "big.bin", big); err != nil {
		t.Fatalf("upload through a server failing twice per request: %v", err)
	}
	f.set(0, false)
	if got := readObject(t, s, "big.bin"); string(got) != string(big) {
		t.Fatal("object differs after retried upload")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	// CreateMultipartUpload, 3 parts and CompleteMultipartUpload, each failed twice.
	if f.injected < 10 {
		t.Errorf("injected %d faults, want at least 10", f.injected)
	}
}

// withDeadline fails the test if fn does not return in time, instead of hanging.
func withDeadline(t *testing.T, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("did not return within 30s")
	}
}

func TestS3PermanentFailure(t *testing.T) {
	f := newFakeS3(t)
	s := f.open(t, "s3://"+testBucket, testS3Options())
	f.set(0, true)
	ctx := context.Background()

	t.Run("small object fails on commit", func(t *testing.T) {
		withDeadline(t, func() {
			obj, err := s.Create(ctx, "small.csv")
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := obj.Write([]byte("x\r\n")); err != nil {
				t.Error(err)
			}
			if err := obj.Commit(); err == nil || !strings.Contains(err.Error(), "upload small.csv") {
				t.Errorf("Commit error = %v, want an upload error", err)
			}
		})
	})

	t.Run("large object fails on write", func(t *testing.T) {
		withDeadline(t, func() {
			if err := writeObject(ctx, s, "big.bin", bigObject()); err == nil {
				t.Error("upload to a failing server succeeded")
			}
		})
	})

	t.Run("export fails, then succeeds once the server recovers", func(t *testing.T) {
		withDeadline(t, func() {
			if _, err := Export(ctx, s, fixtureInfo(), newFixture()); err == nil {
				t.Error("Export to a failing server succeeded")
			}
		})
		if _, err := f.backend.HeadObject(testBucket, "dt=2026-02-04/manifest.json"); err == nil {
			t.Error("a manifest was written by a failed export")
		}
		f.set(0, false)
		man, err := Export(ctx, s, fixtureInfo(), newFixture())
		if err != nil {
			t.Fatal(err)
		}
		checkManifest(t, s, man)
	})
}

// TestS3ExportGolden shows that an export to S3 stores the same bytes as the golden files
// written through the file sink.
func TestS3ExportGolden(t *testing.T) {
	if *update {
		t.Skip("goldens are rewritten from the file sink")
	}
	f := newFakeS3(t)
	s := f.open(t, "s3://"+testBucket+"/finance", testS3Options())
	ctx := context.Background()
	man, err := Export(ctx, s, fixtureInfo(), newFixture())
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, s)
	checkManifest(t, s, man)
	if _, err := ReadManifest(ctx, s, "2026-02-05"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadManifest of a missing date: err = %v, want fs.ErrNotExist", err)
	}
}
