package reports

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// Sink stores report objects under keys relative to its root (the REPORTS_URL). Keys are
// slash-separated paths such as "dt=2026-02-01/grants.csv".
type Sink interface {
	// Create starts a streamed object at key. Nothing is visible at key until the
	// Object's Commit returns nil.
	Create(ctx context.Context, key string) (Object, error)
	// Open reads the object at key. A missing object is an error wrapping fs.ErrNotExist.
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	// List returns the committed objects whose keys start with prefix, sorted by key.
	List(ctx context.Context, prefix string) ([]ObjectInfo, error)
	// Remove deletes the object at key; a missing object is not an error.
	Remove(ctx context.Context, key string) error
	// Link returns where a person can fetch the object at key: a presigned HTTPS URL valid
	// for expires (S3), or an absolute file path (file).
	Link(ctx context.Context, key string, expires time.Duration) (string, error)
}

// Object is an object being written to a Sink.
type Object interface {
	io.Writer
	// Commit finishes the object and makes it visible under its key, replacing any
	// previous object there.
	Commit() error
	// Abort discards the object; the key keeps its previous content. Abort after Commit
	// does nothing, so callers can defer it.
	Abort() error
}

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Key     string // relative to the sink's root
	Size    int64
	ModTime time.Time
}

// SinkOptions tunes the s3:// sink; the file:// sink ignores it. Zero values take the
// defaults. The caller fills it from the environment (S3_FORCE_PATH_STYLE,
// S3_SSE_KMS_KEY_ID); credentials, region and endpoint come from the AWS SDK's own chain.
type SinkOptions struct {
	// ForcePathStyle addresses buckets as https://host/bucket (MinIO and other
	// S3-compatible servers) instead of https://bucket.host.
	ForcePathStyle bool
	// SSEKMSKeyID, when set, asks S3 to encrypt every object with this KMS key
	// (server-side encryption aws:kms).
	SSEKMSKeyID string
	// PartSize is the multipart upload part size: default 8 MiB, at least 5 MiB.
	// An object being written holds at most about (Concurrency + 3) × PartSize of memory.
	PartSize int64
	// Concurrency is the number of parts uploaded at once: default 2.
	Concurrency int
	// MaxAttempts bounds the attempts of each S3 request, first try included: default 10.
	MaxAttempts int
	// MaxBackoff caps the jittered exponential wait between attempts: default 20s.
	MaxBackoff time.Duration
}

const (
	defaultPartSize    = 8 << 20
	minPartSize        = 5 << 20
	defaultConcurrency = 2
	defaultMaxAttempts = 10
	defaultMaxBackoff  = 20 * time.Second
)

// acceptedURLs is the part of every REPORTS_URL error that says what to write instead.
const acceptedURLs = "use file:///absolute/path, file://./relative/path or s3://bucket/optional/prefix"

// OpenSink returns the Sink named by rawURL, the REPORTS_URL setting: file:///abs/path,
// file://./relative/path (relative to the working directory), or s3://bucket/optional/prefix.
// A malformed URL, an unknown scheme or invalid options return an error naming REPORTS_URL;
// for s3:// it also returns the AWS SDK's configuration errors. OpenSink makes no request:
// bad credentials or a missing bucket surface on first use.
func OpenSink(ctx context.Context, rawURL string, opts SinkOptions) (Sink, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("REPORTS_URL %q is not a URL (%v): %s", rawURL, err, acceptedURLs)
	}
	if u.Opaque != "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("REPORTS_URL %q: %s", rawURL, acceptedURLs)
	}
	switch u.Scheme {
	case "file":
		var dir string
		switch u.Host {
		case "", "localhost":
			dir = u.Path
		case ".", "..":
			dir = u.Host + u.Path
		default:
			return nil, fmt.Errorf("REPORTS_URL %q: file URL host must be empty or '.': %s", rawURL, acceptedURLs)
		}
		if dir == "" {
			return nil, fmt.Errorf("REPORTS_URL %q: no directory: %s", rawURL, acceptedURLs)
		}
		abs, err := filepath.Abs(filepath.FromSlash(dir))
		if err != nil {
			return nil, fmt.Errorf("REPORTS_URL %q: %w", rawURL, err)
		}
		return &fileSink{root: abs}, nil
	case "s3":
		if u.Host == "" {
			return nil, fmt.Errorf("REPORTS_URL %q: no bucket: %s", rawURL, acceptedURLs)
		}
		prefix := strings.Trim(u.Path, "/")
		if prefix != "" {
			if err := checkKey(prefix); err != nil {
				return nil, fmt.Errorf("REPORTS_URL %q: prefix: %w", rawURL, err)
			}
			prefix += "/"
		}
		if err := opts.fill(); err != nil {
			return nil, err
		}
		return openS3(ctx, u.Host, prefix, opts)
	default:
		return nil, fmt.Errorf("REPORTS_URL %q: unsupported scheme %q: %s", rawURL, u.Scheme, acceptedURLs)
	}
}

// fill applies defaults and rejects values the uploader cannot use.
func (o *SinkOptions) fill() error {
	switch {
	case o.PartSize == 0:
		o.PartSize = defaultPartSize
	case o.PartSize < minPartSize:
		return fmt.Errorf("reports sink: part size %d is below the S3 minimum of %d bytes", o.PartSize, minPartSize)
	}
	if o.Concurrency < 0 || o.MaxAttempts < 0 || o.MaxBackoff < 0 {
		return errors.New("reports sink: concurrency, max attempts and max backoff must not be negative")
	}
	if o.Concurrency == 0 {
		o.Concurrency = defaultConcurrency
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = defaultMaxAttempts
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = defaultMaxBackoff
	}
	return nil
}

// checkKey rejects keys that are not clean relative slash paths, so no key escapes the
// sink's root directory or prefix.
func checkKey(key string) error {
	if key == "" || strings.HasPrefix(key, "/") || strings.Contains(key, `\`) ||
		path.Clean(key) != key || key == "." || key == ".." || strings.HasPrefix(key, "../") {
		return fmt.Errorf("invalid key %q: want a relative slash-separated path", key)
	}
	return nil
}

// checkPrefix accepts "" and any clean key, with or without a trailing slash.
func checkPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	return checkKey(strings.TrimSuffix(prefix, "/"))
}
