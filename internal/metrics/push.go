// Package metrics pushes the batch-job metrics a Prometheus user expects of creditrecon to a
// Pushgateway after every run: last success time, duration and its phases, grants, amounts and
// clawback due per program, anomalies and their limit. A failed push is logged and never fails
// the run. The alerts and the dashboard of k8s/components/monitoring use these metrics; a test
// there runs this code to check that every metric they name is pushed.
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
// creditrecon_last_success_timestamp_seconds or creditrecon_last_run_clawback_due_usd: the push
// replaces the metrics it sends and keeps the group's others, so those keep the last successful
// run's values. A failed run may not have evaluated any account, and a clawback due of 0 from it
// would read as clawbacks settled.
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
	gauge("creditrecon_anomaly_share_limit", "max-anomaly-share of the last run: it fails when anomalies exceed this share of the usage rows.", r.MaxAnomalyShare)
	full := 0.0
	if r.Summary.Aggregates.Mode == "full" {
		full = 1
	}
	gauge("creditrecon_last_run_full", "1 if the last run read the whole usage history (run --full, or no base run to extend), 0 if it extended a previous run's aggregates.", full)
	phases := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "creditrecon_last_run_phase_seconds",
		Help: "Wall time of each phase of the last run (0 for a phase it did not finish)."}, []string{"phase"})
	reg.MustRegister(phases)
	for _, ph := range []struct {
		name string
		d    time.Duration
	}{
		{"aggregate", r.Summary.AggregateTime},
		{"evaluate", r.Summary.EvaluateTime},
		{"write", r.Summary.WriteTime},
		{"export", r.Summary.ExportTime},
	} {
		phases.WithLabelValues(ph.name).Set(ph.d.Seconds())
	}
	grants := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "creditrecon_last_run_grants",
		Help: "Grants written by the last run, per program."}, []string{"program"})
	amount := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "creditrecon_last_run_granted_usd",
		Help: "USD granted by the last run, per program (a float for dashboards; the ledger is exact)."}, []string{"program"})
	cash := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "creditrecon_last_run_cash_usd",
		Help: "USD of the last run's grants paid in cash (a partner tier's payout), per program; the rest is credits."}, []string{"program"})
	reg.MustRegister(grants, amount, cash)
	var clawback *prometheus.GaugeVec
	if r.Err == nil {
		clawback = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "creditrecon_last_run_clawback_due_usd",
			Help: "USD due back per program as of the last successful run's cutoff (refunds took earnings below what was paid)."}, []string{"program"})
		reg.MustRegister(clawback)
	}
	for _, prog := range reconcile.Programs {
		var n int64
		var usd, due, inCash float64
		if ps := r.Summary.Programs[prog]; ps != nil {
			n, usd, due, inCash = ps.Grants, ps.Amount.InexactFloat64(), ps.ClawbackDue.InexactFloat64(), ps.Cash.InexactFloat64()
		}
		grants.WithLabelValues(string(prog)).Set(float64(n))
		amount.WithLabelValues(string(prog)).Set(usd)
		cash.WithLabelValues(string(prog)).Set(inCash)
		if clawback != nil {
			clawback.WithLabelValues(string(prog)).Set(due)
		}
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
