package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"

	"github.com/runpod/creditrecon/internal/metrics"
	"github.com/runpod/creditrecon/jobs"
)

// runnerSettings are the settings of the commands that run reconciliations (run, backfill, serve):
// the common ones, the program parameters, where reports go and where metrics are pushed.
type runnerSettings struct {
	common
	cfg         jobs.Config
	reportsURL  string
	pushgateway string
}

func (r *runnerSettings) register(s *settings) {
	r.common.register(s)
	r.cfg = jobs.DefaultConfig()
	programFlags(s, &r.cfg)
	r.reportsURL = "file://./reports"
	s.String(&r.reportsURL, "reports-url", "REPORTS_URL", "where reports go: s3://bucket/prefix or file:///path")
	s.String(&r.pushgateway, "pushgateway-url", "PUSHGATEWAY_URL", "Prometheus Pushgateway to push run metrics to (optional)")
}

// validate checks every setting before anything touches the database.
func (r *runnerSettings) validate() error {
	loc, err := r.common.validate()
	if err != nil {
		return err
	}
	r.cfg.Location, r.cfg.Version = loc, version
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

// runner opens the database and wires the runner; close releases what it opened.
func (r *runnerSettings) runner(ctx context.Context, e *env, log *slog.Logger) (*jobs.Runner, func(), error) {
	st, err := r.open(ctx)
	if err != nil {
		return nil, nil, err
	}
	run := &jobs.Runner{Store: st, Config: r.cfg, Log: log, Now: e.now}
	if r.pushgateway != "" {
		run.Observer = &metrics.Pusher{URL: r.pushgateway, Log: log}
	}
	return run, func() { st.Close() }, nil
}
