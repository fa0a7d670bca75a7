package reports

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// s3Sink stores objects in an S3 bucket under a key prefix.
//
// Uploads go through feature/s3/manager's Uploader, deliberately, although it is marked
// deprecated in favour of feature/s3/transfermanager: the manager is a stable v1 module that
// still receives fixes, streams an io.Reader of unknown length with a bounded pool of part
// buffers, and is already a dependency; transfermanager is v0.x, whose API may change in any
// release. Switching later touches only openS3 and Create.
type s3Sink struct {
	client *s3.Client
	//lint:ignore SA1019 chosen over the v0.x transfermanager, see above
	uploader    *manager.Uploader
	bucket      string
	prefix      string // "" or ending in "/"
	sseKMSKeyID string
}

// maxLinkExpiry is the longest validity SigV4 allows for a presigned URL.
const maxLinkExpiry = 7 * 24 * time.Hour

func openS3(ctx context.Context, bucket, prefix string, opts SinkOptions) (*s3Sink, error) {
	// No custom HTTP client: the SDK builds its own, which is what lets AWS_CA_BUNDLE work
	// (LoadDefaultConfig refuses a CA bundle combined with a caller's *http.Client).
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRetryer(func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = opts.MaxAttempts
			o.MaxBackoff = opts.MaxBackoff
			// The client-side retry quota protects long-lived services from retry storms;
			// a nightly batch uploading a handful of objects is bounded by MaxAttempts
			// instead, so a flaky hour does not exhaust the quota mid-report.
			o.RateLimiter = ratelimit.None
		})
	}))
	if err != nil {
		return nil, fmt.Errorf("REPORTS_URL s3://%s: load AWS configuration: %w", bucket, err)
	}
	if cfg.Region == "" {
		return nil, fmt.Errorf("REPORTS_URL s3://%s: no AWS region configured: set AWS_REGION "+
			"(any region, e.g. us-east-1, for an S3-compatible server)", bucket)
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if opts.ForcePathStyle {
			o.UsePathStyle = true
		}
		// BaseEndpoint is set here when AWS_ENDPOINT_URL_S3 (or the shared config) names an
		// S3-compatible server. Such servers may store the SDK's default aws-chunked bodies
		// with CRC32 trailers as object bytes, so send plain bodies signed with their SHA-256.
		if o.BaseEndpoint != nil {
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		}
	})
	//lint:ignore SA1019 chosen over the v0.x transfermanager, see s3Sink
	uploader := manager.NewUploader(client, func(u *manager.Uploader) {
		u.PartSize = opts.PartSize
		u.Concurrency = opts.Concurrency
		// The uploader has its own checksum setting, which must follow the client's.
		if client.Options().RequestChecksumCalculation == aws.RequestChecksumCalculationWhenRequired {
			u.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		}
	})
	return &s3Sink{client: client, uploader: uploader, bucket: bucket, prefix: prefix, sseKMSKeyID: opts.SSEKMSKeyID}, nil
}

func (s *s3Sink) Create(ctx context.Context, key string) (Object, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	in := &s3.PutObjectInput{
		Bucket:      aws.String(s.bucket),
		Key:         aws.String(s.prefix + key),
		ContentType: aws.String(contentType(key)),
	}
	if s.sseKMSKeyID != "" {
		in.ServerSideEncryption = types.ServerSideEncryptionAwsKms
		in.SSEKMSKeyId = aws.String(s.sseKMSKeyID)
	}
	// The writer feeds the uploader through a pipe: the uploader holds at most a few parts
	// in memory, and a write blocks while they are in flight.
	pr, pw := io.Pipe()
	in.Body = pr
	ctx, cancel := context.WithCancel(ctx)
	o := &s3Object{key: key, pw: pw, done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(o.done)
		//lint:ignore SA1019 chosen over the v0.x transfermanager, see s3Sink
		_, o.err = s.uploader.Upload(ctx, in)
		// Unblocks a writer waiting on an upload that failed.
		pr.CloseWithError(o.err)
	}()
	return o, nil
}

func contentType(key string) string {
	switch path.Ext(key) {
	case ".csv":
		return "text/csv; charset=utf-8; header=present"
	case ".json":
		return "application/json"
	}
	return "application/octet-stream"
}

// errAborted ends the upload of an aborted object.
var errAborted = errors.New("object aborted")

type s3Object struct {
	key      string
	pw       *io.PipeWriter
	done     chan struct{} // closed when the upload goroutine has finished
	err      error         // the upload's result, read after done
	cancel   context.CancelFunc
	finished bool
}

func (o *s3Object) Write(p []byte) (int, error) {
	n, err := o.pw.Write(p)
	if err != nil {
		return n, fmt.Errorf("upload %s: %w", o.key, err)
	}
	return n, nil
}

func (o *s3Object) Commit() error {
	if o.finished {
		return fmt.Errorf("commit %s: object already finished", o.key)
	}
	o.finished = true
	_ = o.pw.Close() // never fails
	<-o.done
	o.cancel()
	if o.err != nil {
		return fmt.Errorf("upload %s: %w", o.key, o.err)
	}
	return nil
}

// Abort makes the uploader fail on its next read, which aborts a multipart upload on the
// server while the context is still live, and waits for that to finish.
func (o *s3Object) Abort() error {
	if o.finished {
		return nil
	}
	o.finished = true
	_ = o.pw.CloseWithError(errAborted) // never fails
	<-o.done
	o.cancel()
	return nil
}

func (s *s3Sink) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.prefix + key),
	})
	if err != nil {
		if notFound(err) {
			return nil, fmt.Errorf("open %s: %w: %w", key, fs.ErrNotExist, err)
		}
		return nil, fmt.Errorf("open %s: %w", key, err)
	}
	return out.Body, nil
}

func notFound(err error) bool {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	return errors.As(err, &nsk) || errors.As(err, &nf)
}

func (s *s3Sink) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	var out []ObjectInfo
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket),
		Prefix: aws.String(s.prefix + prefix),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list %q: %w", prefix, err)
		}
		for _, obj := range page.Contents {
			out = append(out, ObjectInfo{
				Key:     strings.TrimPrefix(aws.ToString(obj.Key), s.prefix),
				Size:    aws.ToInt64(obj.Size),
				ModTime: aws.ToTime(obj.LastModified),
			})
		}
	}
	return out, nil
}

func (s *s3Sink) Remove(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.prefix + key),
	})
	if err != nil && !notFound(err) {
		return fmt.Errorf("remove %s: %w", key, err)
	}
	return nil
}

// Link presigns a GET of the object. The URL stops working when expires passes or when
// the credentials that signed it expire, whichever comes first: with temporary credentials
// (IRSA web identity, typically one hour) links live no longer than the session.
func (s *s3Sink) Link(ctx context.Context, key string, expires time.Duration) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	if expires <= 0 || expires > maxLinkExpiry {
		return "", fmt.Errorf("link %s: expiry %s must be positive and at most %s", key, expires, maxLinkExpiry)
	}
	req, err := s3.NewPresignClient(s.client).PresignGetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.prefix + key),
	}, s3.WithPresignExpires(expires))
	if err != nil {
		return "", fmt.Errorf("link %s: %w", key, err)
	}
	return req.URL, nil
}
