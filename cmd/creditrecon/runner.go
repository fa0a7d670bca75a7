package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"

	"github.com/runpod/creditrecon/internal/metrics"
	"github.com/runpod/creditrecon/jobs"
	"github.com/runpod/creditrecon/reports"
)

// runnerSettings are the settings of the commands that run reconciliations (run, backfill, serve):
// the common ones, the program parameters, where reports go and where metrics are pushed.
type runnerSettings struct {
	common
	cfg         jobs.Config
	programs    *programSettings
	pushgateway string
	reports     reportSettings
}

// reportSettings say where reports go.
type reportSettings struct {
	url         string
	pathStyle   bool
	kmsKeyID    string
	maxAttempts int64
}

func (r *reportSettings) register(s *settings) {
	r.url = "file://./reports"
	s.String(&r.url, "reports-url", "REPORTS_URL", "where reports go: s3://bucket/prefix or file:///path")
	s.Bool(&r.pathStyle, "s3-force-path-style", "S3_FORCE_PATH_STYLE", "path-style S3 addressing (MinIO and other S3-compatible servers)")
	s.String(&r.kmsKeyID, "s3-sse-kms-key-id", "S3_SSE_KMS_KEY_ID", "encrypt report objects with this KMS key (SSE-KMS)")
	r.maxAttempts = 10
	s.Int64(&r.maxAttempts, "s3-max-attempts", "AWS_MAX_ATTEMPTS", "attempts of each S3 request, with backoff")
}

// open returns the sink; a bad URL or S3 configuration is a usage error naming REPORTS_URL.
func (r *reportSettings) open(ctx context.Context) (reports.Sink, error) {
	if r.maxAttempts < 1 || r.maxAttempts > 100 {
		return nil, usageErrorf("s3-max-attempts: must be between 1 and 100, got %d", r.maxAttempts)
	}
	sink, err := reports.OpenSink(ctx, r.url, reports.SinkOptions{ForcePathStyle: r.pathStyle, SSEKMSKeyID: r.kmsKeyID,
		MaxAttempts: int(r.maxAttempts)})
	if err != nil {
		return nil, &usageError{err}
	}
	return sink, nil
}

func (r *runnerSettings) register(s *settings) {
	r.common.register(s)
	r.cfg = jobs.DefaultConfig()
	r.programs = programFlags(s, &r.cfg)
	r.reports.register(s)
	s.String(&r.pushgateway, "pushgateway-url", "PUSHGATEWAY_URL", "Prometheus Pushgateway to push run metrics to (optional)")
}

// validate checks every setting before anything touches the database.
func (r *runnerSettings) validate() error {
	loc, err := r.common.validate()
	if err != nil {
		return err
	}
	r.cfg.Location, r.cfg.Version = loc, version
	if err := r.programs.load(); err != nil {
		return err
	}
	errs := []error{r.cfg.Validate()}
	if r.pushgateway != "" {
		if u, err := url.Parse(r.pushgateway); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("pushgateway-url: must be an http(s) URL, got %q", r.pushgateway))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return &usageError{err}
	}
	return nil
}

// runner opens the reports sink and the database and wires the runner; close releases what it
// opened.
func (r *runnerSettings) runner(ctx context.Context, e *env, log *slog.Logger) (*jobs.Runner, func(), error) {
	sink, err := r.reports.open(ctx)
	if err != nil {
		return nil, nil, err
	}
	st, err := r.open(ctx)
	if err != nil {
		return nil, nil, err
	}
	run := &jobs.Runner{Store: st, Config: r.cfg, Sink: sink, Log: log, Now: e.now}
	if r.pushgateway != "" {
		run.Observer = &metrics.Pusher{URL: r.pushgateway, Log: log}
	}
	return run, func() { st.Close() }, nil
}
