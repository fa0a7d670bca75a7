// Package s3test runs an in-process S3-compatible server for tests: gofakes3 over real HTTPS
// (as S3 is reached in production), behind a handler that records requests and injects
// 500/503 faults. The SDK reaches it through the standard environment (SetEnv), exactly as
// production configures it.
package s3test

import (
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// Server is a running fake S3 with one bucket.
type Server struct {
	Backend *s3mem.Backend
	Bucket  string
	URL     string
	CAFile  string       // PEM of the server's certificate, for AWS_CA_BUNDLE
	Client  *http.Client // a plain net/http client that trusts the server

	server    http.Handler
	mu        sync.Mutex
	requests  []Request
	attempts  map[string]int // by method and URI: retries of a request share both
	failFirst int            // fail the first failFirst attempts of every request
	failAll   bool
	injected  int
}

// Request is a request the server received.
type Request struct {
	Method, URI string
	Header      http.Header
}

// New starts a server with bucket; it stops when the test ends.
func New(t testing.TB, bucket string) *Server {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	f := &Server{Backend: backend, Bucket: bucket, server: gofakes3.New(backend).Server(), attempts: map[string]int{}}
	srv := httptest.NewTLSServer(f)
	t.Cleanup(srv.Close)
	f.URL, f.Client = srv.URL, srv.Client()
	f.CAFile = filepath.Join(t.TempDir(), "ca.pem")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(f.CAFile, ca, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// ServeHTTP records the request, then serves it or injects a fault (500 and 503 alternately).
func (f *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, Request{Method: r.Method, URI: r.RequestURI, Header: r.Header.Clone()})
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

// SetFaults fails the first failFirst attempts of every request from now on, or every request.
func (f *Server) SetFaults(failFirst int, failAll bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failFirst, f.failAll = failFirst, failAll
	clear(f.attempts)
}

// Requests returns the requests received so far.
func (f *Server) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

// Injected returns how many faults were injected.
func (f *Server) Injected() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.injected
}

// SetEnv points the SDK's standard chain at the server with static test credentials, keeping it
// away from the machine's shared config, and selects path-style addressing.
func (f *Server) SetEnv(t testing.TB) {
	t.Helper()
	SetEnv(t, f.URL, f.CAFile)
	t.Setenv("S3_FORCE_PATH_STYLE", "true")
}

// SetEnv points the SDK's standard chain at endpoint. An empty caFile leaves AWS_CA_BUNDLE as the
// machine sets it.
func SetEnv(t testing.TB, endpoint, caFile string) {
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
