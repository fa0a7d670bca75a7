package k8s

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/runpod/creditrecon/internal/metrics"
	"github.com/runpod/creditrecon/jobs"
)

// The objects of components/monitoring, included by the production overlays.
const (
	monitoringDir      = "components/monitoring"
	prometheusRuleName = "creditrecon"
	dashboardConfigMap = "creditrecon-dashboard"
	dashboardLabel     = "grafana_dashboard" // the Grafana sidecar loads ConfigMaps labelled "1"
	// runbookURL is where every alert's runbook_url points, followed by "#" and the alert's name
	// in lower case: the anchor GitHub gives a "## AlertName" heading.
	runbookURL = "https://github.com/runpod/creditrecon/blob/main/docs/operations.md"
	// alertsTest holds the promtool unit tests of the alerts; it names alertsRulesFile, which
	// TestAlertRules writes from the rendered PrometheusRule.
	alertsTest      = monitoringDir + "/tests/alerts_test.yaml"
	alertsRulesFile = "creditrecon-rules.yaml"
)

// runbookDocs are the files whose "## AlertName" headings are the runbooks: docs/operations.md,
// where runbook_url points.
var runbookDocs = []string{"../docs/operations.md"}

// severities are the severity labels an alert may have: critical pages, warning opens a ticket,
// info is for dashboards and inhibitions.
var severities = []string{"critical", "warning", "info"}

// prometheusRule is the prometheus-operator's PrometheusRule (monitoring.coreos.com/v1) with
// the fields its CRD defines for what the component uses, so that decode rejects a misspelt
// field as the API server's strict field validation would.
type prometheusRule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              struct {
		Groups []ruleGroup `json:"groups"`
	} `json:"spec"`
}

// ruleGroup and rule are a Prometheus rule file's group and rule, which is what the spec of a
// PrometheusRule holds: TestAlertRules hands the spec to promtool as a rule file.
type ruleGroup struct {
	Name     string `json:"name"`
	Interval string `json:"interval,omitempty"`
	Rules    []rule `json:"rules"`
}

type rule struct {
	Alert         string            `json:"alert,omitempty"`
	Record        string            `json:"record,omitempty"`
	Expr          string            `json:"expr"`
	For           string            `json:"for,omitempty"`
	KeepFiringFor string            `json:"keep_firing_for,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// prometheusRule checks what promtool does not: every rule is an alert with a severity, a
// summary, a description and a runbook in docs/operations.md.
func (c *checker) prometheusRule(where string, r *prometheusRule) {
	if len(r.Spec.Groups) == 0 {
		c.errorf(where, "no rule groups")
	}
	groups, alerts := map[string]bool{}, map[string]bool{}
	for _, g := range r.Spec.Groups {
		if g.Name == "" || groups[g.Name] {
			c.errorf(where, "group name %q is empty or used twice", g.Name)
		}
		groups[g.Name] = true
		for i, rl := range g.Rules {
			rw := fmt.Sprintf("%s: group %s: rule %s", where, g.Name, rl.Alert)
			if rl.Alert == "" {
				c.errorf(where, "group %s: rule %d is not an alert (record %q): the component ships alerts only", g.Name, i, rl.Record)
				continue
			}
			if alerts[rl.Alert] {
				c.errorf(rw, "alert %s is defined twice", rl.Alert)
			}
			alerts[rl.Alert] = true
			if strings.TrimSpace(rl.Expr) == "" {
				c.errorf(rw, "no expr")
			}
			switch sev, ok := rl.Labels["severity"]; {
			case !ok:
				c.errorf(rw, "no severity label")
			case !slices.Contains(severities, sev):
				c.errorf(rw, "severity %q, want one of %q", sev, severities)
			}
			for _, a := range []string{"summary", "description"} {
				if strings.TrimSpace(rl.Annotations[a]) == "" {
					c.errorf(rw, "%s annotation is empty", a)
				}
			}
			if got, want := rl.Annotations["runbook_url"], runbookURL+"#"+strings.ToLower(rl.Alert); got != want {
				c.errorf(rw, "runbook_url %q, want %s", got, want)
			}
		}
	}
}

// dashboard is what the test reads of a Grafana dashboard's JSON model.
type dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []dashboardVariable `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type dashboardVariable struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Query any    `json:"query"`
}

type panel struct {
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource *datasourceRef `json:"datasource"`
	Targets    []struct {
		Datasource *datasourceRef `json:"datasource"`
		Expr       string         `json:"expr"`
		RefID      string         `json:"refId"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// datasourceVariable is the dashboard variable every panel and query takes its data source
// from, so that the dashboard works with whatever the Prometheus data source is called.
const datasourceVariable = "${datasource}"

// dashboard checks the ConfigMap that carries the Grafana dashboard: the sidecar's label, one
// JSON file, and the data source of every panel and query.
func (c *checker) dashboard(where string, cm *corev1.ConfigMap) {
	if cm.Labels[dashboardLabel] != "1" {
		c.errorf(where, "no label %s: \"1\": the Grafana sidecar would not load it", dashboardLabel)
	}
	if len(cm.Data) != 1 {
		c.errorf(where, "%d data keys, want one dashboard JSON file", len(cm.Data))
	}
	for name, text := range cm.Data {
		if _, err := parseDashboard(text); err != nil {
			c.errorf(where, "%s: %v", name, err)
		}
	}
}

// parseDashboard decodes a dashboard and returns its queries, or what is wrong with it.
func parseDashboard(text string) ([]string, error) {
	var d dashboard
	if err := json.Unmarshal([]byte(text), &d); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	var errs []error
	if d.UID == "" || d.Title == "" {
		errs = append(errs, errors.New("no uid or title: the sidecar would add a copy on every change"))
	}
	if !slices.ContainsFunc(d.Templating.List, func(v dashboardVariable) bool {
		return "${"+v.Name+"}" == datasourceVariable && v.Type == "datasource" && v.Query == "prometheus"
	}) {
		errs = append(errs, fmt.Errorf("no datasource variable %s (type datasource, query prometheus)", datasourceVariable))
	}
	var exprs []string
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if p.Datasource == nil || p.Datasource.UID != datasourceVariable {
				errs = append(errs, fmt.Errorf("panel %q: datasource %+v, want uid %s", p.Title, p.Datasource, datasourceVariable))
			}
			if len(p.Targets) == 0 {
				errs = append(errs, fmt.Errorf("panel %q: no queries", p.Title))
			}
			for _, t := range p.Targets {
				if t.Datasource != nil && t.Datasource.UID != datasourceVariable {
					errs = append(errs, fmt.Errorf("panel %q query %s: datasource uid %q, want %s", p.Title, t.RefID, t.Datasource.UID, datasourceVariable))
				}
				if strings.TrimSpace(t.Expr) == "" {
					errs = append(errs, fmt.Errorf("panel %q query %s: no expr", p.Title, t.RefID))
				}
				exprs = append(exprs, t.Expr)
			}
		}
	}
	walk(d.Panels)
	if len(exprs) == 0 {
		errs = append(errs, errors.New("no queries"))
	}
	return exprs, errors.Join(errs...)
}

// metricsArePushed checks that the runs push the metrics the alerts read: with a PrometheusRule
// or the dashboard among the objects, creditrecon-config must set PUSHGATEWAY_URL, or
// CreditreconNoSuccessfulRun fires for the missing metrics.
func (c *checker) metricsArePushed(objs []object) {
	var monitoring []string
	var config *corev1.ConfigMap
	for _, o := range objs {
		switch {
		case o.kind == "PrometheusRule", o.id() == "ConfigMap/"+dashboardConfigMap:
			monitoring = append(monitoring, o.id())
		case o.id() == "ConfigMap/"+configMapName:
			config = o.value.(*corev1.ConfigMap)
		}
	}
	if len(monitoring) == 0 || config == nil {
		return
	}
	slices.Sort(monitoring)
	u, err := url.Parse(config.Data["PUSHGATEWAY_URL"])
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		c.errorf("ConfigMap/"+configMapName, "PUSHGATEWAY_URL %q is not an http(s) URL, but %s read the metrics the runs push there",
			config.Data["PUSHGATEWAY_URL"], strings.Join(monitoring, " and "))
	}
}

// monitoringObjects renders dir and returns its PrometheusRule and the dashboard's JSON.
func monitoringObjects(t *testing.T, dir string) (*prometheusRule, string) {
	t.Helper()
	var rule *prometheusRule
	var board string
	for _, o := range renderObjects(t, dir) {
		switch v := o.value.(type) {
		case *prometheusRule:
			rule = v
		case *corev1.ConfigMap:
			if o.name != dashboardConfigMap {
				continue
			}
			if v.Labels[dashboardLabel] != "1" {
				t.Errorf("%s: ConfigMap/%s has labels %v, want %s: \"1\"", dir, dashboardConfigMap, v.Labels, dashboardLabel)
			}
			for _, text := range v.Data {
				board = text
			}
		}
	}
	if rule == nil || board == "" {
		t.Fatalf("%s renders no PrometheusRule/%s or no dashboard in ConfigMap/%s", dir, prometheusRuleName, dashboardConfigMap)
	}
	return rule, board
}

// TestMonitoringInProduction checks that both production overlays ship the same alerts and
// dashboard, that every alert has its runbook and its unit tests, firing and not firing.
func TestMonitoringInProduction(t *testing.T) {
	rule, board := monitoringObjects(t, "overlays/production")
	sharded, shardedBoard := monitoringObjects(t, "overlays/production-sharded")
	if !reflect.DeepEqual(rule.Spec, sharded.Spec) || board != shardedBoard {
		t.Errorf("overlays/production and overlays/production-sharded ship different alerts or dashboards; the alerts cover both")
	}
	if _, err := parseDashboard(board); err != nil {
		t.Error(err)
	}

	var runbooks string
	for _, f := range runbookDocs {
		b, err := os.ReadFile(f)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		runbooks += string(b)
	}
	firing, quiet := alertTestCoverage(t)
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			if !regexp.MustCompile(`(?m)^## ` + regexp.QuoteMeta(r.Alert) + `[ \t]*$`).MatchString(runbooks) {
				t.Errorf("alert %s: no heading \"## %s\" in %q: runbook_url points to it", r.Alert, r.Alert, runbookDocs)
			}
			if !firing[r.Alert] || !quiet[r.Alert] {
				t.Errorf("alert %s: %s tests it firing %v, not firing %v; want both", r.Alert, alertsTest, firing[r.Alert], quiet[r.Alert])
			}
		}
	}
}

// alertTestCoverage returns the alerts that the promtool unit tests expect to fire at some
// evaluation, and those they expect not to fire at some other.
func alertTestCoverage(t *testing.T) (firing, quiet map[string]bool) {
	t.Helper()
	b, err := os.ReadFile(alertsTest)
	if err != nil {
		t.Fatal(err)
	}
	var tests struct {
		RuleFiles []string `json:"rule_files"`
		Tests     []struct {
			AlertRuleTest []struct {
				Alertname string `json:"alertname"`
				ExpAlerts []any  `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	if err := yaml.Unmarshal(b, &tests); err != nil {
		t.Fatalf("%s: %v", alertsTest, err)
	}
	if !slices.Equal(tests.RuleFiles, []string{alertsRulesFile}) {
		t.Errorf("%s: rule_files %q, want [%s], the file TestAlertRules writes", alertsTest, tests.RuleFiles, alertsRulesFile)
	}
	firing, quiet = map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				firing[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	return firing, quiet
}

// pushedMetrics runs the metrics code of the binary (internal/metrics) against an in-process
// Pushgateway, for a successful run and a failed one, a sharded one and not, and returns the
// names of the metrics it pushed.
func pushedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	var mu sync.Mutex
	names := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dec := expfmt.NewDecoder(r.Body, expfmt.ResponseFormat(r.Header))
		for {
			var mf dto.MetricFamily
			if err := dec.Decode(&mf); err != nil {
				if !errors.Is(err, io.EOF) {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				break
			}
			mu.Lock()
			names[mf.GetName()] = true
			mu.Unlock()
		}
	}))
	defer srv.Close()
	var logged strings.Builder
	p := &metrics.Pusher{URL: srv.URL, Log: slog.New(slog.NewTextHandler(&logged, nil))}
	asOf := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, r := range []jobs.RunReport{
		{Kind: "run", AsOf: asOf, Duration: time.Minute, MaxAnomalyShare: 0.01},
		{Kind: "run", AsOf: asOf, Shard: jobs.Shard{Index: 1, Count: 4}, Duration: time.Minute, MaxAnomalyShare: 0.01},
		{Kind: "run", AsOf: asOf, Duration: time.Minute, MaxAnomalyShare: 0.01, Err: errors.New("boom")},
	} {
		p.RunFinished(context.Background(), r)
	}
	if logged.Len() > 0 {
		t.Fatalf("pushing failed:\n%s", logged.String())
	}
	if len(names) == 0 {
		t.Fatal("the metrics code pushed no metrics")
	}
	return names
}

// metricName finds the creditrecon metrics an expression names. The job label's value
// "creditrecon" has no underscore after it, and no function or label of PromQL starts so.
var metricName = regexp.MustCompile(`\bcreditrecon_[A-Za-z0-9_]*`)

// TestMonitoringMetricsArePushed checks every metric the alerts and the dashboard query against
// what the binary's metrics code pushes: a metric renamed or never pushed would leave an alert
// that never fires and an empty panel.
func TestMonitoringMetricsArePushed(t *testing.T) {
	pushed := pushedMetrics(t)
	rule, board := monitoringObjects(t, "overlays/production")
	exprs := map[string]string{} // expression -> where it is
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			exprs[r.Expr] = "alert " + r.Alert
		}
	}
	queries, err := parseDashboard(board)
	if err != nil {
		t.Error(err)
	}
	for _, q := range queries {
		exprs[q] = "dashboard query"
	}
	used := map[string]bool{}
	for expr, where := range exprs {
		names := metricName.FindAllString(expr, -1)
		if len(names) == 0 {
			t.Errorf("%s names no creditrecon metric: %s", where, expr)
		}
		for _, n := range names {
			used[n] = true
			if !pushed[n] {
				t.Errorf("%s reads %s, which internal/metrics does not push (it pushes %v)", where, n, slices.Sorted(maps.Keys(pushed)))
			}
		}
	}
	// Every pushed metric is on the dashboard, so an operator can see what the alerts see.
	for n := range pushed {
		if !used[n] {
			t.Errorf("%s is pushed but neither the alerts nor the dashboard show it", n)
		}
	}
}

// TestAlertRules hands the rule groups of the PrometheusRule that overlays/production renders
// to promtool: `promtool check rules` (syntax, durations, templates) and `promtool test rules`
// with the unit tests in components/monitoring/tests.
func TestAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool is not installed: this test checks and unit-tests the alerts with it. Install Debian's prometheus package "+
			"(scripts/ensure-promtool does: apt-get install prometheus), which scripts/test runs first: %v", err)
	}
	rule, _ := monitoringObjects(t, "overlays/production")
	rules, err := yaml.Marshal(rule.Spec)
	if err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile(alertsTest)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, alertsRulesFile), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, filepath.Base(alertsTest)), tests, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"check", "rules", alertsRulesFile},
		{"test", "rules", filepath.Base(alertsTest)},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s (rules from the PrometheusRule, tests from %s): %v\n%s", strings.Join(args, " "), alertsTest, err, out)
		}
	}
}
