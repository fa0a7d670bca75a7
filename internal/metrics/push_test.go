package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
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

func summary() jobs.Summary {
	s := jobs.Summary{Anomalies: 3, UsageRows: 1000, Programs: map[reconcile.Program]*jobs.ProgramSummary{}}
	for _, p := range reconcile.Programs {
		s.Programs[p] = &jobs.ProgramSummary{}
	}
	s.Programs[reconcile.Template].Grants = 2
	s.Programs[reconcile.Template].Amount = decimal.RequireFromString("18.14")
	return s
}

func TestPushSuccessAndFailure(t *testing.T) {
	g := &gateway{}
	srv := httptest.NewServer(g)
	defer srv.Close()
	p := &Pusher{URL: srv.URL, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	asOf := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)

	p.RunFinished(context.Background(), jobs.RunReport{Kind: "run", AsOf: asOf, Summary: summary(), Duration: 1500 * time.Millisecond})
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
	} {
		if !strings.Contains(g.body, want) {
			t.Errorf("pushed body lacks %q:\n%s", want, g.body)
		}
	}

	p.RunFinished(context.Background(), jobs.RunReport{Kind: "run", Shard: jobs.Shard{Index: 2, Count: 4}, AsOf: asOf, Summary: summary()})
	if g.path != "/metrics/job/creditrecon/kind/run/shard/2-of-4" {
		t.Errorf("a shard pushed to %s, want its own group /metrics/job/creditrecon/kind/run/shard/2-of-4", g.path)
	}

	p.RunFinished(context.Background(), jobs.RunReport{Kind: "run", AsOf: asOf, Summary: summary(), Err: errors.New("boom")})
	if strings.Contains(g.body, "creditrecon_last_success_timestamp_seconds") {
		t.Errorf("a failed run pushed a success time:\n%s", g.body)
	}
	if !strings.Contains(g.body, "creditrecon_last_run_success 0") {
		t.Errorf("a failed run did not push success 0:\n%s", g.body)
	}
}
