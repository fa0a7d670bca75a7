package reports

import (
	"github.com/runpod/creditrecon/internal/s3test"

	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestOpenSinkURLs(t *testing.T) {
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	valid := []struct {
		url, link string
	}{
		{"file:///var/reports", "/var/reports/k.csv"},
		{"file:///var/reports/", "/var/reports/k.csv"},
		{"file://localhost/var/reports", "/var/reports/k.csv"},
		{"file://./reports", filepath.Join(cwd, "reports", "k.csv")},
		{"file://../reports", filepath.Join(filepath.Dir(cwd), "reports", "k.csv")},
		{"file:///srv/with%20space", "/srv/with space/k.csv"},
	}
	for _, tt := range valid {
		s, err := OpenSink(context.Background(), tt.url, SinkOptions{})
		if err != nil {
			t.Errorf("OpenSink(%q): %v", tt.url, err)
			continue
		}
		if got, err := s.Link(context.Background(), "k.csv", time.Hour); err != nil || got != tt.link {
			t.Errorf("OpenSink(%q).Link = %q, %v; want %q", tt.url, got, err, tt.link)
		}
	}

	invalid := []struct {
		url, want string
	}{
		{"reports", `unsupported scheme ""`},
		{"http://example.com/reports", `unsupported scheme "http"`},
		{"file:reports", "REPORTS_URL"},
		{"file://", "no directory"},
		{"file://example.com/reports", "host must be empty"},
		{"file:///reports?x=1", "REPORTS_URL"},
		{"s3://", "no bucket"},
		{"s3:///prefix", "no bucket"},
		{"s3://bucket/../up", "prefix"},
		{"s3://user@bucket/p", "REPORTS_URL"},
		{"::not a url", "is not a URL"},
	}
	for _, tt := range invalid {
		_, err := OpenSink(context.Background(), tt.url, SinkOptions{})
		if err == nil {
			t.Errorf("OpenSink(%q) succeeded, want an error", tt.url)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, "REPORTS_URL") || !strings.Contains(msg, tt.want) ||
			!strings.Contains(msg, "s3://bucket") {
			t.Errorf("OpenSink(%q) error = %q, want it to name REPORTS_URL, say %q and list the accepted forms", tt.url, msg, tt.want)
		}
	}
}

func TestOpenSinkS3Options(t *testing.T) {
	s3test.SetEnv(t, "http://127.0.0.1:1", "")
	if _, err := OpenSink(context.Background(), "s3://bucket", SinkOptions{PartSize: 1 << 20}); err == nil ||
		!strings.Contains(err.Error(), "part size") {
		t.Errorf("a 1 MiB part size: err = %v, want a part size error", err)
	}
	t.Setenv("AWS_REGION", "")
	if _, err := OpenSink(context.Background(), "s3://bucket", SinkOptions{}); err == nil ||
		!strings.Contains(err.Error(), "AWS_REGION") {
		t.Errorf("no region: err = %v, want it to name AWS_REGION", err)
	}
}

// TestSinkContract runs the same checks against every sink, through OpenSink as
// production uses it.
func TestSinkContract(t *testing.T) {
	t.Run("file", func(t *testing.T) { testSinkContract(t, fileSinkAt(t, t.TempDir()), nil) })
	t.Run("s3", func(t *testing.T) {
		f := s3test.New(t, testBucket)
		testSinkContract(t, openFake(t, f, "s3://"+testBucket+"/finance/nightly/", testS3Options()), f.Client)
	})
}

// bigObject is larger than two 5 MiB parts, so an S3 upload of it is multipart.
func bigObject() []byte {
	b := make([]byte, 11<<20+12345)
	rand.NewChaCha8([32]byte{1}).Read(b)
	return b
}

// writeObject streams body into key in uneven chunks and commits it.
func writeObject(ctx context.Context, s Sink, key string, body []byte) error {
	obj, err := s.Create(ctx, key)
	if err != nil {
		return err
	}
	for chunk := range slices.Chunk(body, 100_003) {
		if _, err := obj.Write(chunk); err != nil {
			return errors.Join(err, obj.Abort())
		}
	}
	return obj.Commit()
}

// testSinkContract checks s; client downloads its links when they are URLs.
func testSinkContract(t *testing.T, s Sink, client *http.Client) {
	ctx := context.Background()
	big := bigObject()
	mustWrite := func(key string, body []byte) {
		t.Helper()
		if err := writeObject(ctx, s, key, body); err != nil {
			t.Fatalf("write %s: %v", key, err)
		}
	}

	t.Run("large object round-trips", func(t *testing.T) {
		mustWrite("dt=2026-02-04/big.bin", big)
		if got := readObject(t, s, "dt=2026-02-04/big.bin"); sha256.Sum256(got) != sha256.Sum256(big) {
			t.Fatalf("read back %d bytes with a different sha256 than the %d written", len(got), len(big))
		}
	})

	t.Run("list", func(t *testing.T) {
		mustWrite("dt=2026-02-04/a.csv", []byte("a\r\n"))
		mustWrite("dt=2026-02-05/c.csv", []byte("ccc\r\n"))
		tests := []struct {
			prefix string
			want   []ObjectInfo
		}{
			{"dt=2026-02-04/", []ObjectInfo{{Key: "dt=2026-02-04/a.csv", Size: 3},
				{Key: "dt=2026-02-04/big.bin", Size: int64(len(big))}}},
			{"dt=2026-02-0", []ObjectInfo{{Key: "dt=2026-02-04/a.csv", Size: 3},
				{Key: "dt=2026-02-04/big.bin", Size: int64(len(big))}, {Key: "dt=2026-02-05/c.csv", Size: 5}}},
			{"dt=2026-02-05/c", []ObjectInfo{{Key: "dt=2026-02-05/c.csv", Size: 5}}},
			{"dt=2026-03-01/", nil},
		}
		for _, tt := range tests {
			got, err := s.List(ctx, tt.prefix)
			if err != nil {
				t.Fatalf("List(%q): %v", tt.prefix, err)
			}
			if !sameObjects(got, tt.want) {
				t.Errorf("List(%q) = %v, want %v", tt.prefix, got, tt.want)
			}
		}
	})

	t.Run("commit replaces", func(t *testing.T) {
		mustWrite("dt=2026-02-05/c.csv", []byte("new\r\n"))
		if got := string(readObject(t, s, "dt=2026-02-05/c.csv")); got != "new\r\n" {
			t.Errorf("after replace read %q, want %q", got, "new\r\n")
		}
	})

	t.Run("abort keeps the previous object", func(t *testing.T) {
		for _, key := range []string{"dt=2026-02-05/c.csv", "dt=2026-02-05/aborted.csv"} {
			obj, err := s.Create(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := obj.Write([]byte("half a report")); err != nil {
				t.Fatal(err)
			}
			if err := obj.Abort(); err != nil {
				t.Fatalf("Abort: %v", err)
			}
			if err := obj.Abort(); err != nil {
				t.Fatalf("second Abort: %v", err)
			}
		}
		if got := string(readObject(t, s, "dt=2026-02-05/c.csv")); got != "new\r\n" {
			t.Errorf("after abort read %q, want %q", got, "new\r\n")
		}
		if _, err := s.Open(ctx, "dt=2026-02-05/aborted.csv"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Open of an aborted object: err = %v, want fs.ErrNotExist", err)
		}
		got, err := s.List(ctx, "dt=2026-02-05/")
		if err != nil {
			t.Fatal(err)
		}
		if want := []ObjectInfo{{Key: "dt=2026-02-05/c.csv", Size: 5}}; !sameObjects(got, want) {
			t.Errorf("List after abort = %v, want %v", got, want)
		}
	})

	t.Run("remove", func(t *testing.T) {
		for range 2 { // removing a missing object is fine
			if err := s.Remove(ctx, "dt=2026-02-05/c.csv"); err != nil {
				t.Fatalf("Remove: %v", err)
			}
		}
		if _, err := s.Open(ctx, "dt=2026-02-05/c.csv"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Open after Remove: err = %v, want fs.ErrNotExist", err)
		}
	})

	t.Run("link downloads", func(t *testing.T) {
		link, err := s.Link(ctx, "dt=2026-02-04/big.bin", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		var got []byte
		if client != nil {
			if !strings.HasPrefix(link, "https://") {
				t.Fatalf("link %q is not an https URL", link)
			}
			resp, err := client.Get(link)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET presigned link: %s", resp.Status)
			}
			if got, err = io.ReadAll(resp.Body); err != nil {
				t.Fatal(err)
			}
		} else {
			if !filepath.IsAbs(link) {
				t.Fatalf("link %q is neither an URL nor an absolute path", link)
			}
			if got, err = os.ReadFile(link); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(got, big) {
			t.Errorf("link %s served %d bytes that differ from the %d written", link, len(got), len(big))
		}
	})

	t.Run("invalid keys", func(t *testing.T) {
		for _, key := range []string{"", "/abs.csv", "../escape.csv", "a/../../b", "a//b", `a\b`, "."} {
			if _, err := s.Create(ctx, key); err == nil {
				t.Errorf("Create(%q) succeeded", key)
			}
			if _, err := s.Open(ctx, key); err == nil {
				t.Errorf("Open(%q) succeeded", key)
			}
		}
		if _, err := s.List(ctx, "../"); err == nil {
			t.Error(`List("../") succeeded`)
		}
	})
}

// sameObjects compares keys and sizes; modification times differ by sink.
func sameObjects(got, want []ObjectInfo) bool {
	return slices.EqualFunc(got, want, func(a, b ObjectInfo) bool {
		return a.Key == b.Key && a.Size == b.Size && !a.ModTime.IsZero()
	})
}
