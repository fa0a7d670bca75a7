package reports

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/runpod/creditrecon/internal/s3test"
)

const testBucket = "finance-reports"

// open returns the sink of rawURL through OpenSink, with the SDK configured by environment
// as in production.
func openFake(t *testing.T, f *s3test.Server, rawURL string, opts SinkOptions) Sink {
	t.Helper()
	s3test.SetEnv(t, f.URL, f.CAFile)
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
	f := s3test.New(t, testBucket)
	opts := testS3Options()
	opts.SSEKMSKeyID = "arn:aws:kms:us-east-1:111122223333:key/test"
	s := openFake(t, f, "s3://"+testBucket+"/reports", opts)
	ctx := context.Background()
	big := bigObject()
	if err := writeObject(ctx, s, "dt=2026-02-04/small.csv", []byte("a,b\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := writeObject(ctx, s, "dt=2026-02-04/big.bin", big); err != nil {
		t.Fatal(err)
	}

	var puts, parts, creates int
	for _, r := range f.Requests() {
		if r.Header.Get("X-Amz-Trailer") != "" || strings.Contains(r.Header.Get("Content-Encoding"), "aws-chunked") {
			t.Errorf("%s %s sent an aws-chunked body with a trailer", r.Method, r.URI)
		}
		isPart := strings.Contains(r.URI, "partNumber=")
		isCreate := r.Method == http.MethodPost && strings.Contains(r.URI, "?uploads")
		isPut := r.Method == http.MethodPut && !isPart
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
		if got := r.Header.Get("X-Amz-Server-Side-Encryption"); got != "aws:kms" {
			t.Errorf("%s %s: x-amz-server-side-encryption = %q, want aws:kms", r.Method, r.URI, got)
		}
		if got := r.Header.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id"); got != opts.SSEKMSKeyID {
			t.Errorf("%s %s: KMS key id = %q, want %q", r.Method, r.URI, got, opts.SSEKMSKeyID)
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
	obj, err := f.Backend.HeadObject(testBucket, "reports/dt=2026-02-04/big.bin")
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
	f := s3test.New(t, testBucket)
	s := openFake(t, f, "s3://"+testBucket, testS3Options())
	f.SetFaults(2, false)
	big := bigObject()
	if err := writeObject(context.Background(), s, "big.bin", big); err != nil {
		t.Fatalf("upload through a server failing twice per request: %v", err)
	}
	f.SetFaults(0, false)
	if got := readObject(t, s, "big.bin"); string(got) != string(big) {
		t.Fatal("object differs after retried upload")
	}
	// CreateMultipartUpload, 3 parts and CompleteMultipartUpload, each failed twice.
	if f.Injected() < 10 {
		t.Errorf("injected %d faults, want at least 10", f.Injected())
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
	f := s3test.New(t, testBucket)
	s := openFake(t, f, "s3://"+testBucket, testS3Options())
	f.SetFaults(0, true)
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
		if _, err := f.Backend.HeadObject(testBucket, "dt=2026-02-04/manifest.json"); err == nil {
			t.Error("a manifest was written by a failed export")
		}
		f.SetFaults(0, false)
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
	f := s3test.New(t, testBucket)
	s := openFake(t, f, "s3://"+testBucket+"/finance", testS3Options())
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
