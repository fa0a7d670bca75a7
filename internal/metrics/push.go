// Package metrics pushes the batch-job metrics a Prometheus user expects of creditrecon to a
// Pushgateway after every run: last success time, duration, grants and amounts per program,
// anomalies. A failed push is logged and never fails the run.
package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"

	"github.com/runpod/creditrecon/jobs"
	"github.com/runpod/creditrecon/reconcile"
)

// Pusher pushes a run's metrics to the Pushgateway at URL, grouped by job "creditrecon", the
// run's kind (run or backfill) and, for a shard, its shard ("I-of-N"), so that each shard of a
// night has its own last success. It implements jobs.Observer.
type Pusher struct {
	URL    string
	Log    *slog.Logger
	Client push.HTTPDoer // nil: http.DefaultClient
}

var _ jobs.Observer = (*Pusher)(nil)

// RunFinished pushes the run's metrics. A failed run pushes its failure without touching
// creditrecon_last_success_timestamp_seconds (the push adds, it does not replace the group).
func (p *Pusher) RunFinished(ctx context.Context, r jobs.RunReport) {
	reg := prometheus.NewRegistry()
	gauge := func(name, help string, v float64) {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
		g.Set(v)
		reg.MustRegister(g)
	}
	now := float64(time.Now().Unix())
	success := 0.0
	if r.Err == nil {
		success = 1
		gauge("creditrecon_last_success_timestamp_seconds", "When the last successful run finished.", now)
	}
	gauge("creditrecon_last_run_timestamp_seconds", "When the last run finished, successful or not.", now)
	gauge("creditrecon_last_run_success", "1 if the last run succeeded, else 0.", success)
	gauge("creditrecon_last_run_duration_seconds", "Wall time of the last run.", r.Duration.Seconds())
	gauge("creditrecon_last_run_cutoff_timestamp_seconds", "The cutoff (as_of) of the last run.", float64(r.AsOf.Unix()))
	gauge("creditrecon_last_run_anomalies", "Usage rows excluded as anomalies by the last run.", float64(r.Summary.Anomalies))
	gauge("creditrecon_last_run_usage_rows", "Usage rows considered by the last run.", float64(r.Summary.UsageRows))
	grants := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "creditrecon_last_run_grants",
		Help: "Grants written by the last run, per program."}, []string{"program"})
	amount := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "creditrecon_last_run_granted_usd",
		Help: "USD granted by the last run, per program (a float for dashboards; the ledger is exact)."}, []string{"program"})
	reg.MustRegister(grants, amount)
	for _, prog := range reconcile.Programs {
		var n int64
		var usd float64
		if ps := r.Summary.Programs[prog]; ps != nil {
			n, usd = ps.Grants, ps.Amount.InexactFloat64()
		}
		grants.WithLabelValues(string(prog)).Set(float64(n))
		amount.WithLabelValues(string(prog)).Set(usd)
	}
	pusher := push.New(p.URL, "creditrecon").Grouping("kind", r.Kind).Gatherer(reg)
	if r.Shard.Sharded() {
		pusher = pusher.Grouping("shard", fmt.Sprintf("%d-of-%d", r.Shard.Index, r.Shard.Count))
	}
	if p.Client != nil {
		pusher = pusher.Client(p.Client)
	}
	if err := pusher.AddContext(ctx); err != nil {
		p.Log.Warn("push metrics failed; the run itself is unaffected", "pushgateway", p.URL, "error", err.Error())
	}
}
