package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/shopspring/decimal"

	"github.com/runpod/creditrecon/jobs"
	"github.com/runpod/creditrecon/reconcile"
)

// gateway records what a Pushgateway receives.
type gateway struct {
	mu     sync.Mutex
	method string
	path   string
	body   string // the pushed metrics, decoded and rendered as text lines "name{labels} value"
}

func (g *gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	dec := expfmt.NewDecoder(r.Body, expfmt.ResponseFormat(r.Header))
	var lines []string
	for {
		var mf dto.MetricFamily
		if err := dec.Decode(&mf); err != nil {
			if !errors.Is(err, io.EOF) {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			break
		}
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			if len(m.GetLabel()) > 0 {
				var labels []string
				for _, l := range m.GetLabel() {
					labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
				}
				name += "{" + strings.Join(labels, ",") + "}"
			}
			lines = append(lines, fmt.Sprintf("%s %v", name, m.GetGauge().GetValue()))
		}
	}
	g.mu.Lock()
	g.method, g.path, g.body = r.Method, r.URL.Path, strings.Join(lines, "\n")
	g.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// grouping returns the grouping key of a Pushgateway push path, /metrics/job/JOB{/LABEL/VALUE}.
func grouping(path string) map[string]string {
	parts := strings.Split(strings.TrimPrefix(path, "/metrics/"), "/")
	key := map[string]string{}
	for i := 0; i+1 < len(parts); i += 2 {
		key[parts[i]] = parts[i+1]
	}
	return key
}

func summary() jobs.Summary {
	s := jobs.Summary{Anomalies: 3, UsageRows: 1000, Programs: map[reconcile.Program]*jobs.ProgramSummary{},
		Aggregates:    jobs.Aggregates{Mode: "incremental"},
		AggregateTime: 2 * time.Second, EvaluateTime: 500 * time.Millisecond, WriteTime: 250 * time.Millisecond, ExportTime: time.Second}
	for _, p := range reconcile.Programs {
		s.Programs[p] = &jobs.ProgramSummary{}
	}
	s.Programs[reconcile.Template].Grants = 2
	s.Programs[reconcile.Template].Amount = decimal.RequireFromString("18.14")
	s.Programs[reconcile.Referral].ClawbackDue = decimal.RequireFromString("12.5")
	return s
}

func TestPushSuccessAndFailure(t *testing.T) {
	g := &gateway{}
	srv := httptest.NewServer(g)
	defer srv.Close()
	p := &Pusher{URL: srv.URL, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	asOf := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)

	p.RunFinished(context.Background(), jobs.RunReport{Kind: "run", AsOf: asOf, Summary: summary(), Duration: 1500 * time.Millisecond,
		MaxAnomalyShare: 0.01})
	if g.method != http.MethodPost || g.path != "/metrics/job/creditrecon/kind/run" {
		t.Errorf("pushed %s %s, want POST /metrics/job/creditrecon/kind/run", g.method, g.path)
	}
	for _, want := range []string{
		"creditrecon_last_success_timestamp_seconds",
		"creditrecon_last_run_success 1",
		"creditrecon_last_run_duration_seconds 1.5",
		"creditrecon_last_run_anomalies 3",
		"creditrecon_last_run_usage_rows 1000",
		`creditrecon_last_run_grants{program="template"} 2`,
		`creditrecon_last_run_granted_usd{program="template"} 18.14`,
		`creditrecon_last_run_grants{program="referral"} 0`,
		"creditrecon_last_run_cutoff_timestamp_seconds 1.769904e+09",
		"creditrecon_anomaly_share_limit 0.01",
		"creditrecon_last_run_full 0",
		`creditrecon_last_run_phase_seconds{phase="aggregate"} 2`,
		`creditrecon_last_run_phase_seconds{phase="evaluate"} 0.5`,
		`creditrecon_last_run_phase_seconds{phase="write"} 0.25`,
		`creditrecon_last_run_phase_seconds{phase="export"} 1`,
		`creditrecon_last_run_clawback_due_usd{program="referral"} 12.5`,
		`creditrecon_last_run_clawback_due_usd{program="template"} 0`,
	} {
		if !strings.Contains(g.body, want) {
			t.Errorf("pushed body lacks %q:\n%s", want, g.body)
		}
	}

	p.RunFinished(context.Background(), jobs.RunReport{Kind: "run", Shard: jobs.Shard{Index: 2, Count: 4}, AsOf: asOf, Summary: summary()})
	// The client writes the grouping labels after the job in map order.
	if got, want := grouping(g.path), map[string]string{"job": "creditrecon", "kind": "run", "shard": "2-of-4"}; !maps.Equal(got, want) {
		t.Errorf("a shard pushed to %s, group %v; want its own group %v", g.path, got, want)
	}

	full := summary()
	full.Aggregates.Mode = "full"
	p.RunFinished(context.Background(), jobs.RunReport{Kind: "run", AsOf: asOf, Summary: full})
	if !strings.Contains(g.body, "creditrecon_last_run_full 1") {
		t.Errorf("a full run did not push creditrecon_last_run_full 1:\n%s", g.body)
	}

	p.RunFinished(context.Background(), jobs.RunReport{Kind: "run", AsOf: asOf, Summary: summary(), Err: errors.New("boom"), MaxAnomalyShare: 0.02})
	// A failed run keeps the last success's time and clawback due in the group.
	for _, kept := range []string{"creditrecon_last_success_timestamp_seconds", "creditrecon_last_run_clawback_due_usd"} {
		if strings.Contains(g.body, kept) {
			t.Errorf("a failed run pushed %s:\n%s", kept, g.body)
		}
	}
	for _, want := range []string{"creditrecon_last_run_success 0", "creditrecon_anomaly_share_limit 0.02", "creditrecon_last_run_anomalies 3"} {
		if !strings.Contains(g.body, want) {
			t.Errorf("a failed run did not push %q:\n%s", want, g.body)
		}
	}
}
