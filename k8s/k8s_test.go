package k8s

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // time zones load the same on every machine, as on the API server

	"github.com/robfig/cron/v3"
	"github.com/runpod/creditrecon/internal/exitcode"
	"github.com/runpod/creditrecon/terms"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// exitCodes are the exit codes of the creditrecon binary. They must match the exit codes that
// cmd/creditrecon returns (internal/exitcode; TestExitCodesMatchTheBinary compares them): a pod
// failure policy rule naming a code the binary never uses never fires, and the code it should
// have named is then retried or ignored by mistake.
var exitCodes = map[int32]string{
	0: "success",
	1: "the run failed",
	2: "bad usage or configuration",
	3: "another run holds the advisory lock",
	4: "interrupted by SIGTERM or SIGINT at a safe point",
}

// exitUsage is the exit code for bad usage or configuration. A retry fails the same way, so
// every pod failure policy must fail the Job at once on it, for every container.
const exitUsage = 2

// Names and values the manifests and the binary agree on.
const (
	mainContainer     = "creditrecon"
	migrateContainer  = "migrate"
	serviceAccount    = "creditrecon"
	configMapName     = "creditrecon-config"
	dbSecretName      = "creditrecon-db"
	ownerSecretName   = "creditrecon-db-owner" // migrate's; dbSecretName is the run's (databaseSecret)
	dbSecretKey       = "database-url"
	nonRootUID        = 65532 // the image's user (distroless nonroot)
	roleARNAnnotation = "eks.amazonaws.com/role-arn"
	placeholderDate   = "YYYY-MM-DD"
	placeholderRole   = ":000000000000:" // the account of base's role ARN
	placeholderBucket = "set-in-overlay"
)

// The programs' terms (SPEC 7) in Kubernetes: terms/kustomization.yaml generates the ConfigMap
// termsConfigMap, key termsKey, from termsSource, under a fixed name that the backfill Jobs mount
// too. Every container that runs a planning command reads it from a read-only mount, named by
// termsEnv.
const (
	termsConfigMap = "creditrecon-terms"
	termsKey       = "terms.yaml"
	termsEnv       = "CREDITRECON_TERMS"
	termsSource    = "../terms/runpod-2025.yaml" // the file production runs with
	termsFlag      = "terms"                     // the flag termsEnv stands for
)

// planningCommands are the subcommands that plan, and so read the terms file: with
// CREDITRECON_TERMS they plan under it, without it under the built-in seed terms. `migrate` does
// not read terms, so its init containers neither mount the terms nor set CREDITRECON_TERMS
// (checker.terms requires both to be so).
var planningCommands = []string{"run", "backfill", "export", "explain", "simulate", "verify", "serve"}

// The draw secret (SPEC 8.1): the key of the signup bonus draws, the raw value of drawSecretEnv.
// Every container that runs a planning command gets it from Secret drawSecretName, key
// drawSecretKey, by a secretKeyRef that is not optional (a missing Secret stops the container
// from starting instead of letting it plan without the key), and from nowhere else: never a
// literal value, a ConfigMap or an arg. `migrate` does not draw, and gets no part of it.
// checker.drawSecret and checker.configMapHoldsNoDrawSecret enforce it.
const (
	drawSecretEnv  = "CREDITRECON_DRAW_SECRET"
	drawSecretName = "creditrecon-draw"
	drawSecretKey  = "secret"
)

// programFlags are the program flags of SPEC 2.4 (cmd/creditrecon/config.go, programFlags;
// TestProgramFlagsMatchTheBinary compares them). Given next to a terms file, as a flag or as its
// variable (programFlagEnv), they make every planning command exit 2: the file is the one source
// of truth.
var programFlags = []string{"programs", "referral-rate", "referral-min-referrals", "referral-min-spend", "template-rate",
	"template-min-runtime-seconds", "serverless-threshold", "serverless-referrer-bonus", "serverless-referred-bonus",
	"referral-start", "template-start", "serverless-start"}

// programFlagEnv returns the variable the binary reads program flag name from.
func programFlagEnv(name string) string {
	return "CREDITRECON_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// kustomizations are the directories under k8s/ that render to manifests.
// TestEveryKustomizationIsChecked keeps this list complete.
var kustomizations = []struct {
	dir string
	// env names the environment the kustomization deploys to; its namespace and image must be
	// set. Empty for templates, which hold placeholders and are not applied as they are.
	env  string
	want []string // the objects rendered, "Kind/name", sorted
}{
	{"base", "", scheduled},
	{"backfill", "", []string{"Job/creditrecon-backfill"}},
	{"overlays/staging", "staging", scheduled},
	{"overlays/staging/backfill", "staging", []string{"Job/creditrecon-backfill"}},
	{"overlays/production", "production", monitored},
	{"overlays/production/backfill", "production", []string{"Job/creditrecon-backfill"}},
	// The same as their environment's overlay, with the nightly run sharded over an Indexed Job
	// (components/sharded-nightly).
	{"overlays/staging-sharded", "staging", scheduled},
	{"overlays/production-sharded", "production", monitored},
}

// scheduled are the objects of base and of each environment's overlay.
var scheduled = []string{
	"ConfigMap/creditrecon-config",
	"ConfigMap/" + termsConfigMap,
	"CronJob/" + nightlyCronJob,
	"CronJob/" + weeklyFullCronJob,
	"ServiceAccount/creditrecon",
}

// monitored are the objects of the production overlays, which add components/monitoring's
// alerts and dashboard to scheduled (monitoring_test.go).
var monitored = []string{
	"ConfigMap/creditrecon-config",
	"ConfigMap/" + dashboardConfigMap,
	"ConfigMap/" + termsConfigMap,
	"CronJob/" + nightlyCronJob,
	"CronJob/" + weeklyFullCronJob,
	"PrometheusRule/" + prometheusRuleName,
	"ServiceAccount/creditrecon",
}

// The CronJobs and the args each must run. The weekly full run is a copy of the nightly one but
// for its schedule, args and labels (checker.cronJobsAgree). The nightly run may be sharded
// (components/sharded-nightly): an Indexed Job whose args add --shard $(JOB_COMPLETION_INDEX)/N.
// The weekly full run is never sharded.
const (
	nightlyCronJob    = "creditrecon-nightly"
	weeklyFullCronJob = "creditrecon-weekly-full"
	shardableCronJob  = nightlyCronJob
)

var cronJobArgs = map[string][]string{
	nightlyCronJob:    {"run"},           // incremental: extends the previous run's aggregates
	weeklyFullCronJob: {"run", "--full"}, // re-reads the whole history; must agree with the nightly runs
}

// completionIndexVar is the variable the Job controller sets, in every container of an Indexed
// Job's pods, to the pod's index: 0 to completions-1.
const completionIndexVar = "JOB_COMPLETION_INDEX"

func TestManifests(t *testing.T) {
	// What each environment's kustomizations render, to check they agree: a backfill must run
	// in the nightly run's namespace with the nightly run's image.
	namespaces := map[string]map[string][]string{} // env -> namespace -> dirs
	images := map[string]map[string][]string{}     // env -> image -> dirs
	// The terms ConfigMaps, "namespace/name", each environment's kustomizations render and those
	// their pods mount. A backfill renders none: it mounts the one its environment's overlay
	// applied, by name. Templates (env "") are base and backfill.
	termsRendered := map[string]map[string][]string{} // env -> ConfigMap -> dirs
	termsMounted := map[string]map[string][]string{}  // env -> ConfigMap -> dirs

	for _, k := range kustomizations {
		t.Run(k.dir, func(t *testing.T) {
			objs := renderObjects(t, k.dir)

			var got []string
			for _, o := range objs {
				got = append(got, o.id())
			}
			slices.Sort(got)
			if !slices.Equal(got, k.want) {
				t.Errorf("objects: got %q, want %q", got, k.want)
			}

			for _, p := range check(k.env, objs) {
				t.Error(p)
			}

			for _, o := range objs {
				if o.kind == "ConfigMap" && o.name == termsConfigMap {
					addTo(termsRendered, k.env, o.namespace+"/"+o.name, k.dir)
				}
				if pod := o.podSpec(); pod != nil {
					for _, v := range pod.Volumes {
						if v.ConfigMap != nil && v.ConfigMap.Name == termsConfigMap {
							addTo(termsMounted, k.env, o.namespace+"/"+v.ConfigMap.Name, k.dir)
						}
					}
				}
			}

			if k.env == "" {
				return
			}
			for _, o := range objs {
				addTo(namespaces, k.env, o.namespace, k.dir)
				for _, c := range o.containers() {
					addTo(images, k.env, c.Image, k.dir)
				}
			}
		})
	}

	for env, byNamespace := range namespaces {
		if len(byNamespace) > 1 {
			t.Errorf("%s: the kustomizations use different namespaces: %v", env, byNamespace)
		}
	}
	for env, byImage := range images {
		if len(byImage) > 1 {
			t.Errorf("%s: the kustomizations use different images: %v", env, byImage)
		}
	}
	for env, byConfigMap := range termsMounted {
		for cm, dirs := range byConfigMap {
			if len(termsRendered[env][cm]) == 0 {
				name := env
				if name == "" {
					name = "templates"
				}
				t.Errorf("%s: %v mount ConfigMap %s, which no kustomization of the environment renders (rendered: %v); their pods would never start",
					name, dirs, cm, termsRendered[env])
			}
		}
	}
}

func addTo(m map[string]map[string][]string, env, value, dir string) {
	if m[env] == nil {
		m[env] = map[string][]string{}
	}
	if !slices.Contains(m[env][value], dir) {
		m[env][value] = append(m[env][value], dir)
	}
}

// TestEveryKustomizationIsChecked fails when a kustomization under k8s/ is missing from
// kustomizations, so a new overlay cannot go unchecked.
func TestEveryKustomizationIsChecked(t *testing.T) {
	var found, components []string
	used := map[string]bool{} // components the kustomizations under k8s/ include
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "testdata" {
			return filepath.SkipDir
		}
		if d.IsDir() || d.Name() != "kustomization.yaml" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var k struct {
			Kind       string   `json:"kind"`
			Components []string `json:"components"`
		}
		if err := yaml.Unmarshal(b, &k); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		dir := filepath.Dir(path)
		if k.Kind == "Component" { // components render only as part of a kustomization
			components = append(components, filepath.ToSlash(dir))
		} else {
			found = append(found, filepath.ToSlash(dir))
		}
		for _, c := range k.Components {
			used[filepath.ToSlash(filepath.Join(dir, c))] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range components {
		if !used[c] {
			t.Errorf("component %s is included by no kustomization, so nothing renders and checks it", c)
		}
	}
	var listed []string
	for _, k := range kustomizations {
		listed = append(listed, k.dir)
	}
	slices.Sort(found)
	slices.Sort(listed)
	if !slices.Equal(found, listed) {
		t.Errorf("kustomizations under k8s/: got %q, the test checks %q; add the new ones to kustomizations", found, listed)
	}
}

// TestChecksCatchBrokenManifests renders testdata/broken, which breaks the rules the checks
// enforce, and requires each broken rule to be reported.
func TestChecksCatchBrokenManifests(t *testing.T) {
	problems := check("broken", renderObjects(t, "testdata/broken"))
	all := strings.Join(problems, "\n")

	for _, want := range []string{
		// CronJob
		`CronJob/creditrecon-nightly-with-a-name-that-is-much-too-long: name is 53 characters`,
		`schedule "61 0 * * *": `,
		`timeZone "Mars/Olympus": `,
		`concurrencyPolicy is "Allow", want Forbid`,
		`startingDeadlineSeconds is 5, want more than 10`,
		`no successfulJobsHistoryLimit or failedJobsHistoryLimit`,
		`CronJob/creditrecon-late: timeZone "America/New_York" is not UTC`,
		`CronJob/creditrecon-late: a Job scheduled at 23:00 can start pods until 04:00, the next day`,
		`restartPolicy is "OnFailure"`,
		`exit code 7 is not one creditrecon returns`,
		`values [4 3] must be sorted and without duplicates`,
		`containerName "sidecar" is not a container of the pod`,
		`exit code 2 of container "creditrecon" does not fail the Job at once`,
		`no rule ignores the DisruptionTarget pod condition`,
		`"migrate" must be the first init container`,
		`image "creditrecon:latest" is not pinned to a version`,
		`runAsNonRoot is not true`,
		`readOnlyRootFilesystem is not true`,
		`allowPrivilegeEscalation is not false`,
		`capabilities do not drop ALL`,
		`no cpu request`,
		`no memory limit`,
		`DATABASE_URL must come from secretKeyRef creditrecon-db/database-url`,
		`container migrate: DATABASE_URL must come from secretKeyRef creditrecon-db-owner/database-url (not optional), is not set`,
		`Job/creditrecon-secrets-swapped: container migrate: DATABASE_URL must come from secretKeyRef creditrecon-db-owner/database-url (not optional), is from creditrecon-db/database-url`,
		`Job/creditrecon-secrets-swapped: container creditrecon: DATABASE_URL must come from secretKeyRef creditrecon-db/database-url (not optional), is from creditrecon-db-owner/database-url`,
		`env PGURL holds a database URL in plain text`,
		`nothing mounted at /tmp`,
		`CronJob/creditrecon-nightly-with-a-name-that-is-much-too-long: container migrate: --shard: only ` + "`creditrecon run`" + ` takes --shard`,
		`CronJob/creditrecon-nightly-with-a-name-that-is-much-too-long: --shard 0/2 outside an Indexed Job`,
		`serviceAccountName is "default", want "creditrecon"`,
		// the nightly and the weekly full run
		`CronJob/creditrecon-nightly and CronJob/creditrecon-weekly-full: can run at once: on Sunday 2026-01-04 from 00:30 to 05:31 and from 03:00 to 08:00`,
		`CronJob/creditrecon-weekly-full: args ["run"], want ["run" "--full"]`,
		`CronJob/creditrecon-weekly-full: spec.failedJobsHistoryLimit is 1, CronJob/creditrecon-nightly's 5`,
		`CronJob/creditrecon-weekly-full: spec.jobTemplate.spec.template.spec.initContainers[0].securityContext.readOnlyRootFilesystem is false, CronJob/creditrecon-nightly's true`,
		// a run Job
		`Job/creditrecon-run-broken: completionMode Indexed, but the args do not shard the work`,
		`Job/creditrecon-run-broken: completions 3 and parallelism 2: want both N`,
		`no activeDeadlineSeconds`,
		`no podFailurePolicy`,
		`/tmp is volume "tmp" with no sizeLimit`,
		`resources: memory request 512Mi is above its limit 256Mi`,
		// sharded run Jobs
		`CronJob/creditrecon-sharded-nightly-whose-name-is-fifty-one: name is 51 characters, want a DNS-1123 subdomain of at most 50`,
		`Job/creditrecon-shard-not-indexed: --shard $(JOB_COMPLETION_INDEX)/2 outside an Indexed Job`,
		`Job/creditrecon-shard-not-indexed: args refer to $(JOB_COMPLETION_INDEX), which is not defined`,
		`Job/creditrecon-shard-not-indexed: completions 2 and parallelism 2: want one pod at a time`,
		`Job/creditrecon-shard-not-indexed: backoffLimitPerIndex requires completionMode Indexed`,
		`Job/creditrecon-shard-not-indexed: maxFailedIndexes requires completionMode Indexed`,
		`Job/creditrecon-shard-literal: --shard 0/4: a fixed index`,
		`Job/creditrecon-shard-literal: completionMode Indexed without backoffLimitPerIndex`,
		`Job/creditrecon-shard-literal: podFailurePolicy.rules[1]: action FailIndex requires backoffLimitPerIndex`,
		`Job/creditrecon-shard-mismatch: --shard $(JOB_COMPLETION_INDEX)/3: N is 3, completions 4`,
		`Job/creditrecon-shard-mismatch: completions 4 and parallelism 2: want both N`,
		`Job/creditrecon-shard-mismatch: backoffLimit 2 would fail the Job before every shard has used its backoffLimitPerIndex`,
		`Job/creditrecon-shard-mismatch: maxFailedIndexes 5 is above completions 4`,
		`Job/creditrecon-shard-zero: --shard $(JOB_COMPLETION_INDEX)/0: N must be a positive integer`,
		`Job/creditrecon-shard-twice: --shard given 2 times`,
		`Job/creditrecon-shard-bad-form: --shard "$(JOB_COMPLETION_INDEX)-of-2": want $(JOB_COMPLETION_INDEX)/N`,
		`Job/creditrecon-backfill-sharded: --shard: only ` + "`creditrecon run`" + ` takes --shard`,
		`Job/creditrecon-backfill-sharded: completionMode Indexed, but the args do not shard the work`,
		`Job/creditrecon-shard-job-whose-name-leaves-no-room-for-pod-indexes: name and "-9" are not a valid DNS-1123 label`,
		// backfill Job
		`Job/creditrecon-backfill-broken: --from 2026-02-01 is after --to 2026-01-01`,
		`args refer to $(REDO), which is not defined`,
		`--from: "YYYY-MM-DD" is a placeholder`,
		`Job/creditrecon-backfill-broken-with-a-name-longer-than-sixty-three-characters-is-no-good: name is not a valid DNS-1123 label`,
		// ServiceAccount and ConfigMap
		`ServiceAccount/creditrecon: role ARN "arn:aws:iam::000000000000:role/creditrecon-set-in-overlay" is the base's placeholder`,
		`REPORTS_URL "file:///tmp/reports" is not an s3:// URL`,
		`ConfigMap/creditrecon-config: DATABASE_URL belongs in Secret creditrecon-db`,
		`CREDITRECON_LOG_FORMAT is "text", want json`,
		`has no namespace`,
		// alerts and dashboard (monitoring_test.go)
		`PrometheusRule/creditrecon: group creditrecon: rule CreditreconBroken: no severity label`,
		`PrometheusRule/creditrecon: group creditrecon: rule CreditreconBroken: description annotation is empty`,
		`PrometheusRule/creditrecon: group creditrecon: rule CreditreconBroken: runbook_url "https://example.com/runbook", want https://github.com/runpod/creditrecon/blob/main/docs/operations.md#creditreconbroken`,
		`PrometheusRule/creditrecon: group creditrecon: rule CreditreconBroken: alert CreditreconBroken is defined twice`,
		`PrometheusRule/creditrecon: group creditrecon: rule CreditreconBroken: no expr`,
		`PrometheusRule/creditrecon: group creditrecon: rule CreditreconBroken: severity "page", want one of`,
		`PrometheusRule/creditrecon: group creditrecon: rule 2 is not an alert (record "creditrecon:last_run_success:min")`,
		`ConfigMap/creditrecon-dashboard: no label grafana_dashboard: "1"`,
		`ConfigMap/creditrecon-dashboard: creditrecon.json: no uid or title`,
		`no datasource variable ${datasource}`,
		`panel "fixed": datasource &{Type:prometheus UID:prometheus-1}, want uid ${datasource}`,
		`ConfigMap/creditrecon-config: PUSHGATEWAY_URL "" is not an http(s) URL, but ConfigMap/creditrecon-dashboard and PrometheusRule/creditrecon read the metrics`,
		// the programs' terms
		`ConfigMap/creditrecon-terms-5g7m9b2hkt: name "creditrecon-terms-5g7m9b2hkt": want the fixed name creditrecon-terms`,
		`ConfigMap/creditrecon-terms-5g7m9b2hkt: terms.yaml is not terms/runpod-2025.yaml byte for byte`,
		`ConfigMap/creditrecon-terms: keys ["seed.yaml" "terms.yaml"], want exactly "terms.yaml"`,
		`ConfigMap/creditrecon-terms: terms.yaml does not parse, and every planning command would exit 2: terms.yaml:3:7: programs.referral[0].rates: missing`,
		`; terms.yaml:4:15: programs.referral[0].window: "6 months" is not a window`,
		`ConfigMap/creditrecon-terms: terms.yaml is not terms/runpod-2025.yaml byte for byte`,
		`Job/creditrecon-terms-missing: container migrate: CREDITRECON_TERMS is set, but ` + "`creditrecon migrate`" + ` does not read the terms`,
		`Job/creditrecon-terms-missing: container migrate: mounts ConfigMap creditrecon-terms at /etc/creditrecon/terms, but ` + "`creditrecon migrate`" + ` does not read the terms`,
		`Job/creditrecon-terms-missing: container creditrecon: no CREDITRECON_TERMS: ` + "`creditrecon run`" + ` would plan under the built-in seed terms`,
		`Job/creditrecon-terms-outside: container creditrecon: CREDITRECON_TERMS=/etc/creditrecon/terms.yaml is under no volume mount`,
		`Job/creditrecon-terms-writable: container creditrecon: volume "terms" (ConfigMap creditrecon-terms) is mounted at /etc/creditrecon/terms without readOnly: true`,
		`Job/creditrecon-terms-wrong-volume: container creditrecon: CREDITRECON_TERMS=/etc/creditrecon/db-ca/terms.yaml is in volume "db-ca" (mounted at /etc/creditrecon/db-ca), which is not ConfigMap creditrecon-terms`,
		`Job/creditrecon-terms-wrong-key: container creditrecon: CREDITRECON_TERMS=/etc/creditrecon/terms/terms.yaml is key "seed.yaml" in volume "terms" of ConfigMap creditrecon-terms, want its key terms.yaml`,
		`Job/creditrecon-terms-and-flags: container creditrecon: flag --referral-rate=0.03, env CREDITRECON_PROGRAMS, env CREDITRECON_TEMPLATE_RATE from ConfigMap creditrecon-program-flags next to the terms file`,
		`Job/creditrecon-terms-and-flags: container creditrecon: flag --terms: name the terms file only by CREDITRECON_TERMS`,
		`ConfigMap/creditrecon-program-flags: CREDITRECON_TEMPLATE_RATE is a program parameter, and the pods run with the terms file (CREDITRECON_TERMS): creditrecon would exit 2`,
		// the draw secret
		`Job/creditrecon-draw-literal: container creditrecon: CREDITRECON_DRAW_SECRET has a literal value: the secret would be in the repository`,
		`Job/creditrecon-draw-from-configmap: container creditrecon: CREDITRECON_DRAW_SECRET is from ConfigMap creditrecon-draw-settings key CREDITRECON_DRAW_SECRET: a ConfigMap is not secret; want valueFrom.secretKeyRef creditrecon-draw/secret (not optional)`,
		`Job/creditrecon-draw-from-configmap: container creditrecon: CREDITRECON_DRAW_SECRET from ConfigMap creditrecon-draw-settings (envFrom, key CREDITRECON_DRAW_SECRET): a ConfigMap is not secret`,
		`Job/creditrecon-draw-from-configmap: container creditrecon: CREDITRECON_DRAW_SECRET from ConfigMap creditrecon-draw-settings (envFrom, key DRAW_SECRET): a ConfigMap is not secret`,
		`ConfigMap/creditrecon-draw-settings: CREDITRECON_DRAW_SECRET belongs in Secret creditrecon-draw (key secret), not in a ConfigMap`,
		`Job/creditrecon-draw-missing: container creditrecon: no CREDITRECON_DRAW_SECRET: ` + "`creditrecon run`" + ` would exit 2 as soon as the terms draw a signup bonus (terms/runpod-2025.yaml); want valueFrom.secretKeyRef creditrecon-draw/secret (not optional)`,
		`Job/creditrecon-draw-in-migrate: container migrate: CREDITRECON_DRAW_SECRET is set, but ` + "`creditrecon migrate`" + ` does not draw: only the containers that plan (run, backfill, export, explain, simulate, verify, serve) get the draw secret (least privilege)`,
		`Job/creditrecon-draw-in-migrate: container migrate: mounts Secret creditrecon-draw at /etc/creditrecon/draw, but ` + "`creditrecon migrate`" + ` does not draw (least privilege)`,
		`Job/creditrecon-draw-in-args: container creditrecon: args expand $(CREDITRECON_DRAW_SECRET): the secret would be in the command line`,
		`Job/creditrecon-draw-in-args: container creditrecon: flag --draw-secret=$(CREDITRECON_DRAW_SECRET): the draw secret is never an arg`,
		`Job/creditrecon-draw-optional: container creditrecon: CREDITRECON_DRAW_SECRET is set 2 times in env`,
		`Job/creditrecon-draw-optional: container creditrecon: CREDITRECON_DRAW_SECRET is optional: without Secret creditrecon-draw the container would start`,
		`Job/creditrecon-draw-optional: container creditrecon: CREDITRECON_DRAW_SECRET is from Secret creditrecon-db key database-url; want valueFrom.secretKeyRef creditrecon-draw/secret (not optional)`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("problems do not report %q; got:\n%s", want, all)
		}
	}
}

// TestDatabaseSecretPerContainer takes the nightly CronJob as base renders it and gives its two
// containers the wrong database login in each way: every mix-up must be reported, for the
// container that has it and for no other.
func TestDatabaseSecretPerContainer(t *testing.T) {
	var nightly object
	for _, o := range renderObjects(t, "base") {
		if o.id() == "CronJob/"+nightlyCronJob {
			nightly = o
		}
	}
	if nightly.value == nil {
		t.Fatalf("base renders no CronJob/%s", nightlyCronJob)
	}
	tests := []struct {
		name                 string
		migrate, run         string // the Secret each container's DATABASE_URL comes from
		wantMigrate, wantRun bool   // whether a problem is reported for it
	}{
		{"as shipped", ownerSecretName, dbSecretName, false, false},
		{"swapped", dbSecretName, ownerSecretName, true, true},
		{"both the job's", dbSecretName, dbSecretName, true, false},
		{"both the owner's", ownerSecretName, ownerSecretName, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cj := nightly.value.(*batchv1.CronJob).DeepCopy()
			pod := &cj.Spec.JobTemplate.Spec.Template.Spec
			setSecret := func(ct *corev1.Container, secret string) {
				i := slices.IndexFunc(ct.Env, func(e corev1.EnvVar) bool { return e.Name == "DATABASE_URL" })
				if i < 0 || ct.Env[i].ValueFrom == nil || ct.Env[i].ValueFrom.SecretKeyRef == nil {
					t.Fatalf("container %s: no DATABASE_URL from a Secret", ct.Name)
				}
				ct.Env[i].ValueFrom.SecretKeyRef.Name = secret
			}
			i := slices.IndexFunc(pod.InitContainers, func(ct corev1.Container) bool { return ct.Name == migrateContainer })
			j := slices.IndexFunc(pod.Containers, func(ct corev1.Container) bool { return ct.Name == mainContainer })
			if i < 0 || j < 0 {
				t.Fatalf("no init container %q or no container %q", migrateContainer, mainContainer)
			}
			setSecret(&pod.InitContainers[i], tt.migrate)
			setSecret(&pod.Containers[j], tt.run)
			o := nightly
			o.value = cj
			var gotMigrate, gotRun bool
			for _, p := range check("", []object{o}) {
				switch {
				case strings.Contains(p, "container "+migrateContainer+": DATABASE_URL"):
					gotMigrate = true
				case strings.Contains(p, "container "+mainContainer+": DATABASE_URL"):
					gotRun = true
				default:
					t.Errorf("unexpected problem: %s", p)
				}
			}
			if gotMigrate != tt.wantMigrate || gotRun != tt.wantRun {
				t.Errorf("migrate from %s, run from %s: reported for migrate %v, for the run %v; want %v, %v",
					tt.migrate, tt.run, gotMigrate, gotRun, tt.wantMigrate, tt.wantRun)
			}
		})
	}
}

// TestShardedNightly takes the CronJobs as overlays/production-sharded renders them, breaks the
// sharded nightly run in each way a patch could, and requires each break to be reported; as
// shipped, nothing is.
func TestShardedNightly(t *testing.T) {
	var nightly, weekly object
	for _, o := range renderObjects(t, "overlays/production-sharded") {
		switch o.id() {
		case "CronJob/" + nightlyCronJob:
			nightly = o
		case "CronJob/" + weeklyFullCronJob:
			weekly = o
		}
	}
	if nightly.value == nil || weekly.value == nil {
		t.Fatalf("overlays/production-sharded renders no CronJob/%s or no CronJob/%s", nightlyCronJob, weeklyFullCronJob)
	}
	runOf := func(cj *batchv1.CronJob) *corev1.Container {
		pod := &cj.Spec.JobTemplate.Spec.Template.Spec
		i := slices.IndexFunc(pod.Containers, func(ct corev1.Container) bool { return ct.Name == mainContainer })
		if i < 0 {
			t.Fatalf("CronJob/%s: no container %q", cj.Name, mainContainer)
		}
		return &pod.Containers[i]
	}
	if !isIndexed(&nightly.value.(*batchv1.CronJob).Spec.JobTemplate.Spec) {
		t.Fatalf("overlays/production-sharded: CronJob/%s is not an Indexed Job", nightlyCronJob)
	}
	ptr := func(i int32) *int32 { return &i }
	tests := []struct {
		name                 string
		breakNightly, breakW func(*batchv1.CronJob)
		want                 string // a problem that must be reported; "" for none at all
	}{
		{name: "as shipped"},
		{
			name:         "fixed index",
			breakNightly: func(cj *batchv1.CronJob) { runOf(cj).Args = []string{"run", "--shard", "0/4"} },
			want:         "CronJob/creditrecon-nightly: --shard 0/4: a fixed index",
		},
		{
			name:         "flag form with =",
			breakNightly: func(cj *batchv1.CronJob) { runOf(cj).Args = []string{"run", "--shard=$(JOB_COMPLETION_INDEX)/4"} },
		},
		{
			name:         "N is not completions",
			breakNightly: func(cj *batchv1.CronJob) { runOf(cj).Args = []string{"run", "--shard", "$(JOB_COMPLETION_INDEX)/8"} },
			want:         "CronJob/creditrecon-nightly: --shard $(JOB_COMPLETION_INDEX)/8: N is 8, completions 4",
		},
		{
			name:         "parallelism is not N",
			breakNightly: func(cj *batchv1.CronJob) { cj.Spec.JobTemplate.Spec.Parallelism = ptr(1) },
			want:         "CronJob/creditrecon-nightly: completions 4 and parallelism 1: want both N",
		},
		{
			name:         "no --shard",
			breakNightly: func(cj *batchv1.CronJob) { runOf(cj).Args = []string{"run"} },
			want:         "CronJob/creditrecon-nightly: completionMode Indexed, but the args do not shard the work",
		},
		{
			name:         "another flag beside --shard",
			breakNightly: func(cj *batchv1.CronJob) { runOf(cj).Args = append(runOf(cj).Args, "--full") },
			want:         `CronJob/creditrecon-nightly: args ["run" "--shard" "$(JOB_COMPLETION_INDEX)/4" "--full"], want ["run"] (sharded: plus --shard $(JOB_COMPLETION_INDEX)/N)`,
		},
		{
			name: "migrate with --shard",
			breakNightly: func(cj *batchv1.CronJob) {
				cj.Spec.JobTemplate.Spec.Template.Spec.InitContainers[0].Args = []string{"migrate", "--shard", "$(JOB_COMPLETION_INDEX)/4"}
			},
			want: "CronJob/creditrecon-nightly: container migrate: --shard: only `creditrecon run` takes --shard",
		},
		{
			name:         "not Indexed",
			breakNightly: func(cj *batchv1.CronJob) { cj.Spec.JobTemplate.Spec.CompletionMode = nil },
			want:         "CronJob/creditrecon-nightly: --shard $(JOB_COMPLETION_INDEX)/4 outside an Indexed Job",
		},
		{
			name:         "the base's global backoffLimit",
			breakNightly: func(cj *batchv1.CronJob) { cj.Spec.JobTemplate.Spec.BackoffLimit = ptr(3) },
			want:         "CronJob/creditrecon-nightly: backoffLimit 3 would fail the Job before every shard has used its backoffLimitPerIndex (3) retries",
		},
		{
			name:         "a global backoffLimit that never cuts a shard short",
			breakNightly: func(cj *batchv1.CronJob) { cj.Spec.JobTemplate.Spec.BackoffLimit = ptr(15) },
		},
		{
			name:         "no per-index retries",
			breakNightly: func(cj *batchv1.CronJob) { cj.Spec.JobTemplate.Spec.BackoffLimitPerIndex = nil },
			want:         "CronJob/creditrecon-nightly: completionMode Indexed without backoffLimitPerIndex",
		},
		{
			name: "exit code 2 fails only its index",
			breakNightly: func(cj *batchv1.CronJob) {
				cj.Spec.JobTemplate.Spec.PodFailurePolicy.Rules[0].Action = batchv1.PodFailurePolicyActionFailIndex
			},
			want: `CronJob/creditrecon-nightly: exit code 2 of container "creditrecon" does not fail the Job at once`,
		},
		{
			name: "weekly full run sharded too",
			breakW: func(cj *batchv1.CronJob) {
				n := &nightly.value.(*batchv1.CronJob).Spec.JobTemplate.Spec
				s := &cj.Spec.JobTemplate.Spec
				s.CompletionMode, s.Completions, s.Parallelism, s.BackoffLimit, s.BackoffLimitPerIndex =
					n.CompletionMode, n.Completions, n.Parallelism, n.BackoffLimit, n.BackoffLimitPerIndex
				runOf(cj).Args = []string{"run", "--full", "--shard", "$(JOB_COMPLETION_INDEX)/4"}
			},
			want: `CronJob/creditrecon-weekly-full: args ["run" "--full" "--shard" "$(JOB_COMPLETION_INDEX)/4"], want ["run" "--full"]`,
		},
		{
			name:   "weekly full run differs in more than sharding",
			breakW: func(cj *batchv1.CronJob) { cj.Spec.JobTemplate.Spec.ActiveDeadlineSeconds = nil },
			want:   "CronJob/creditrecon-weekly-full: spec.jobTemplate.spec.activeDeadlineSeconds is missing, CronJob/creditrecon-nightly's 14400",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, w := nightly, weekly
			ncj, wcj := nightly.value.(*batchv1.CronJob).DeepCopy(), weekly.value.(*batchv1.CronJob).DeepCopy()
			if tt.breakNightly != nil {
				tt.breakNightly(ncj)
			}
			if tt.breakW != nil {
				tt.breakW(wcj)
			}
			n.value, w.value = ncj, wcj
			problems := check("production", []object{n, w})
			switch {
			case tt.want == "" && len(problems) > 0:
				t.Errorf("got problems, want none:\n%s", strings.Join(problems, "\n"))
			case tt.want != "" && !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tt.want) }):
				t.Errorf("problems do not report %q; got:\n%s", tt.want, strings.Join(problems, "\n"))
			}
		})
	}
}

// TestTermsPerContainer takes the nightly CronJob and the ConfigMaps as overlays/production
// renders them, changes how the run reaches the terms file in each way a patch could, and
// requires each break to be reported and each equivalent layout to pass; as shipped, nothing is
// reported.
func TestTermsPerContainer(t *testing.T) {
	var nightly, config, termsCM object
	for _, o := range renderObjects(t, "overlays/production") {
		switch o.id() {
		case "CronJob/" + nightlyCronJob:
			nightly = o
		case "ConfigMap/" + configMapName:
			config = o
		case "ConfigMap/" + termsConfigMap:
			termsCM = o
		}
	}
	if nightly.value == nil || config.value == nil || termsCM.value == nil {
		t.Fatalf("overlays/production renders no CronJob/%s, ConfigMap/%s or ConfigMap/%s", nightlyCronJob, configMapName, termsConfigMap)
	}
	type pod struct {
		run, migrate  *corev1.Container
		env           *corev1.EnvVar      // the run's CREDITRECON_TERMS
		mount         *corev1.VolumeMount // the run's mount of the terms
		volume        *corev1.Volume      // the terms volume
		configMapData map[string]string   // creditrecon-config's
	}
	tests := []struct {
		name  string
		patch func(p pod)
		want  []string // problems that must be reported; none for no problem at all
	}{
		{name: "as shipped"},
		{
			name:  "no CREDITRECON_TERMS",
			patch: func(p pod) { p.env.Name = "CREDITRECON_TERMS_FILE" },
			want:  []string{"CronJob/creditrecon-nightly: container creditrecon: no CREDITRECON_TERMS"},
		},
		{
			name:  "a relative path",
			patch: func(p pod) { p.env.Value = "terms/terms.yaml" },
			want:  []string{`container creditrecon: CREDITRECON_TERMS must be a plain absolute path (value: /DIR/terms.yaml), is "terms/terms.yaml"`},
		},
		{
			name: "the path from a ConfigMap",
			patch: func(p pod) {
				p.env.Value, p.env.ValueFrom = "", &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: configMapName}, Key: "TERMS"}}
			},
			want: []string{"container creditrecon: CREDITRECON_TERMS must be a plain absolute path (value: /DIR/terms.yaml), is from valueFrom"},
		},
		{
			name:  "beside the mount",
			patch: func(p pod) { p.env.Value = "/etc/creditrecon/terms.yaml" },
			want:  []string{"container creditrecon: CREDITRECON_TERMS=/etc/creditrecon/terms.yaml is under no volume mount"},
		},
		{
			name:  "in /tmp",
			patch: func(p pod) { p.env.Value = "/tmp/terms.yaml" },
			want:  []string{`container creditrecon: CREDITRECON_TERMS=/tmp/terms.yaml is in volume "tmp" (mounted at /tmp), which is not ConfigMap creditrecon-terms`},
		},
		{
			name:  "the mount's directory",
			patch: func(p pod) { p.env.Value = "/etc/creditrecon/terms" },
			want:  []string{`container creditrecon: CREDITRECON_TERMS=/etc/creditrecon/terms is no key of it in volume "terms"`},
		},
		{
			name:  "another file of the ConfigMap",
			patch: func(p pod) { p.env.Value = "/etc/creditrecon/terms/seed.yaml" },
			want:  []string{`container creditrecon: CREDITRECON_TERMS=/etc/creditrecon/terms/seed.yaml is key "seed.yaml" in volume "terms" of ConfigMap creditrecon-terms, want its key terms.yaml`},
		},
		{
			name:  "a writable mount",
			patch: func(p pod) { p.mount.ReadOnly = false },
			want:  []string{`container creditrecon: volume "terms" (ConfigMap creditrecon-terms) is mounted at /etc/creditrecon/terms without readOnly: true`},
		},
		{
			name:  "a volume of another ConfigMap",
			patch: func(p pod) { p.volume.ConfigMap.Name = configMapName },
			want:  []string{`container creditrecon: CREDITRECON_TERMS=/etc/creditrecon/terms/terms.yaml is in volume "terms" (mounted at /etc/creditrecon/terms), which is not ConfigMap creditrecon-terms`},
		},
		{
			name: "the key projected elsewhere",
			patch: func(p pod) {
				p.volume.ConfigMap.Items = []corev1.KeyToPath{{Key: termsKey, Path: "current.yaml"}}
			},
			want: []string{`container creditrecon: CREDITRECON_TERMS=/etc/creditrecon/terms/terms.yaml is no key of it in volume "terms"`},
		},
		{
			name: "the key projected at the path",
			patch: func(p pod) {
				p.volume.ConfigMap.Items = []corev1.KeyToPath{{Key: termsKey, Path: "runpod.yaml"}}
				p.env.Value = "/etc/creditrecon/terms/runpod.yaml"
			},
		},
		{
			name: "the file mounted by subPath",
			patch: func(p pod) {
				p.mount.MountPath, p.mount.SubPath = "/etc/creditrecon/terms.yaml", termsKey
				p.env.Value = "/etc/creditrecon/terms.yaml"
			},
		},
		{
			name: "a program flag",
			patch: func(p pod) {
				p.run.Args = append(p.run.Args, "--referral-min-spend", "100")
			},
			want: []string{"container creditrecon: flag --referral-min-spend next to the terms file: program settings are a usage error with CREDITRECON_TERMS (creditrecon exits 2"},
		},
		{
			name: "a program variable",
			patch: func(p pod) {
				p.run.Env = append(p.run.Env, corev1.EnvVar{Name: "CREDITRECON_SERVERLESS_START", Value: "2025-01-01"})
			},
			want: []string{"container creditrecon: env CREDITRECON_SERVERLESS_START next to the terms file"},
		},
		{
			name: "an empty program variable, which the binary ignores",
			patch: func(p pod) {
				p.run.Env = append(p.run.Env, corev1.EnvVar{Name: "CREDITRECON_REFERRAL_RATE"})
			},
		},
		{
			name:  "a program variable in creditrecon-config",
			patch: func(p pod) { p.configMapData["CREDITRECON_PROGRAMS"] = "referral,template" },
			want: []string{
				"ConfigMap/creditrecon-config: CREDITRECON_PROGRAMS is a program parameter",
				"container creditrecon: env CREDITRECON_PROGRAMS from ConfigMap creditrecon-config next to the terms file",
			},
		},
		{
			name:  "--terms as a flag",
			patch: func(p pod) { p.run.Args = append(p.run.Args, "--terms=/etc/creditrecon/terms/terms.yaml") },
			want:  []string{"container creditrecon: flag --terms=/etc/creditrecon/terms/terms.yaml: name the terms file only by CREDITRECON_TERMS"},
		},
		{
			name: "migrate with the terms",
			patch: func(p pod) {
				p.migrate.Env = append(p.migrate.Env, *p.env)
				p.migrate.VolumeMounts = append(p.migrate.VolumeMounts, *p.mount)
			},
			want: []string{
				"container migrate: CREDITRECON_TERMS is set, but `creditrecon migrate` does not read the terms",
				"container migrate: mounts ConfigMap creditrecon-terms at /etc/creditrecon/terms, but `creditrecon migrate` does not read the terms",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, cfg := nightly, config
			cj := nightly.value.(*batchv1.CronJob).DeepCopy()
			cm := config.value.(*corev1.ConfigMap).DeepCopy()
			n.value, cfg.value = cj, cm
			spec := &cj.Spec.JobTemplate.Spec.Template.Spec
			p := pod{configMapData: cm.Data}
			if i := slices.IndexFunc(spec.Containers, func(ct corev1.Container) bool { return ct.Name == mainContainer }); i >= 0 {
				p.run = &spec.Containers[i]
			}
			if i := slices.IndexFunc(spec.InitContainers, func(ct corev1.Container) bool { return ct.Name == migrateContainer }); i >= 0 {
				p.migrate = &spec.InitContainers[i]
			}
			if p.run == nil || p.migrate == nil {
				t.Fatalf("CronJob/%s: no container %q or no init container %q", nightlyCronJob, mainContainer, migrateContainer)
			}
			if i := slices.IndexFunc(p.run.Env, func(e corev1.EnvVar) bool { return e.Name == termsEnv }); i >= 0 {
				p.env = &p.run.Env[i]
			}
			if i := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.ConfigMap != nil && v.ConfigMap.Name == termsConfigMap }); i >= 0 {
				p.volume = &spec.Volumes[i]
				if j := slices.IndexFunc(p.run.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == p.volume.Name }); j >= 0 {
					p.mount = &p.run.VolumeMounts[j]
				}
			}
			if p.env == nil || p.volume == nil || p.mount == nil {
				t.Fatalf("CronJob/%s: the run has no %s, or no mount of a volume of ConfigMap %s", nightlyCronJob, termsEnv, termsConfigMap)
			}
			if tt.patch != nil {
				tt.patch(p)
			}
			problems := check("production", []object{n, cfg, termsCM})
			if len(tt.want) == 0 && len(problems) > 0 {
				t.Errorf("got problems, want none:\n%s", strings.Join(problems, "\n"))
			}
			for _, want := range tt.want {
				if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, want) }) {
					t.Errorf("problems do not report %q; got:\n%s", want, strings.Join(problems, "\n"))
				}
			}
		})
	}
}

// TestDrawSecretPerContainer takes the nightly CronJob and the ConfigMaps as overlays/production
// renders them, changes how each container gets the draw secret in each way a patch could, and
// requires each break to be reported for the container that has it, without ever printing the
// value; equivalent layouts pass, and as shipped nothing is reported.
func TestDrawSecretPerContainer(t *testing.T) {
	var nightly, config, termsCM object
	for _, o := range renderObjects(t, "overlays/production") {
		switch o.id() {
		case "CronJob/" + nightlyCronJob:
			nightly = o
		case "ConfigMap/" + configMapName:
			config = o
		case "ConfigMap/" + termsConfigMap:
			termsCM = o
		}
	}
	if nightly.value == nil || config.value == nil || termsCM.value == nil {
		t.Fatalf("overlays/production renders no CronJob/%s, ConfigMap/%s or ConfigMap/%s", nightlyCronJob, configMapName, termsConfigMap)
	}
	const literal = "a-literal-draw-secret-of-more-than-32-bytes" // must never appear in a problem
	type pod struct {
		spec          *corev1.PodSpec
		run, migrate  *corev1.Container
		env           *corev1.EnvVar    // the run's CREDITRECON_DRAW_SECRET
		configMapData map[string]string // creditrecon-config's
	}
	secretRef := func(name, key string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key}}
	}
	type drawCase struct {
		name  string
		patch func(p pod)
		want  []string // draw secret problems that must be reported; none for none at all
	}
	tests := []drawCase{
		{name: "as shipped"},
		{
			name:  "not optional, said so",
			patch: func(p pod) { p.env.ValueFrom.SecretKeyRef.Optional = new(bool) },
		},
		{
			name:  "missing in the run",
			patch: func(p pod) { p.env.Name = "CREDITRECON_DRAW_KEY" },
			want:  []string{"CronJob/creditrecon-nightly: container creditrecon: no CREDITRECON_DRAW_SECRET: `creditrecon run` would exit 2"},
		},
		{
			name:  "a literal value",
			patch: func(p pod) { p.env.Value, p.env.ValueFrom = literal, nil },
			want:  []string{"container creditrecon: CREDITRECON_DRAW_SECRET has a literal value"},
		},
		{
			name:  "an empty value",
			patch: func(p pod) { p.env.ValueFrom = nil },
			want:  []string{"container creditrecon: CREDITRECON_DRAW_SECRET is empty; want valueFrom.secretKeyRef creditrecon-draw/secret (not optional)"},
		},
		{
			name: "from a ConfigMap's key",
			patch: func(p pod) {
				p.env.ValueFrom = &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: drawSecretName}, Key: drawSecretKey}}
			},
			want: []string{"container creditrecon: CREDITRECON_DRAW_SECRET is from ConfigMap creditrecon-draw key secret: a ConfigMap is not secret"},
		},
		{
			name: "from a field",
			patch: func(p pod) {
				p.env.ValueFrom = &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.uid"}}
			},
			want: []string{"container creditrecon: CREDITRECON_DRAW_SECRET is not from a Secret"},
		},
		{
			name:  "from the database's Secret",
			patch: func(p pod) { p.env.ValueFrom = secretRef(dbSecretName, dbSecretKey) },
			want:  []string{"container creditrecon: CREDITRECON_DRAW_SECRET is from Secret creditrecon-db key database-url; want valueFrom.secretKeyRef creditrecon-draw/secret"},
		},
		{
			name:  "another key of the Secret",
			patch: func(p pod) { p.env.ValueFrom.SecretKeyRef.Key = "draw-secret" },
			want:  []string{"container creditrecon: CREDITRECON_DRAW_SECRET is from Secret creditrecon-draw key draw-secret"},
		},
		{
			name: "optional",
			patch: func(p pod) {
				optional := true
				p.env.ValueFrom.SecretKeyRef.Optional = &optional
			},
			want: []string{"container creditrecon: CREDITRECON_DRAW_SECRET is optional: without Secret creditrecon-draw the container would start"},
		},
		{
			name:  "set twice",
			patch: func(p pod) { p.run.Env = append(p.run.Env, *p.env) },
			want:  []string{"container creditrecon: CREDITRECON_DRAW_SECRET is set 2 times in env"},
		},
		{
			name:  "in creditrecon-config",
			patch: func(p pod) { p.configMapData[drawSecretEnv] = literal },
			want: []string{
				"ConfigMap/creditrecon-config: CREDITRECON_DRAW_SECRET belongs in Secret creditrecon-draw (key secret), not in a ConfigMap",
				"container creditrecon: CREDITRECON_DRAW_SECRET from ConfigMap creditrecon-config (envFrom, key CREDITRECON_DRAW_SECRET): a ConfigMap is not secret; want",
				"container migrate: CREDITRECON_DRAW_SECRET from ConfigMap creditrecon-config (envFrom, key CREDITRECON_DRAW_SECRET): a ConfigMap is not secret, and `creditrecon migrate` does not draw",
			},
		},
		{
			name: "in creditrecon-config under a prefix",
			patch: func(p pod) {
				p.configMapData["DRAW_SECRET"] = literal
				p.run.EnvFrom = append(p.run.EnvFrom, corev1.EnvFromSource{Prefix: "CREDITRECON_",
					ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: configMapName}}})
			},
			want: []string{"container creditrecon: CREDITRECON_DRAW_SECRET from ConfigMap creditrecon-config (envFrom, key DRAW_SECRET)"},
		},
		{
			name:  "expanded in the args",
			patch: func(p pod) { p.run.Args = append(p.run.Args, "--note=$(CREDITRECON_DRAW_SECRET)") },
			want:  []string{"container creditrecon: args expand $(CREDITRECON_DRAW_SECRET): the secret would be in the command line"},
		},
		{
			name:  "a flag",
			patch: func(p pod) { p.run.Args = append(p.run.Args, "-draw_secret_file", "/etc/creditrecon/draw/secret") },
			want:  []string{"container creditrecon: flag -draw_secret_file: the draw secret is never an arg"},
		},
		{
			name:  "in migrate",
			patch: func(p pod) { p.migrate.Env = append(p.migrate.Env, *p.env) },
			want:  []string{"container migrate: CREDITRECON_DRAW_SECRET is set, but `creditrecon migrate` does not draw"},
		},
		{
			name: "in migrate under another name",
			patch: func(p pod) {
				p.migrate.Env = append(p.migrate.Env, corev1.EnvVar{Name: "DRAW", ValueFrom: secretRef(drawSecretName, drawSecretKey)})
			},
			want: []string{"container migrate: env DRAW is from Secret creditrecon-draw, but `creditrecon migrate` does not draw"},
		},
		{
			name: "in migrate by envFrom",
			patch: func(p pod) {
				p.migrate.EnvFrom = append(p.migrate.EnvFrom, corev1.EnvFromSource{
					SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: drawSecretName}}})
			},
			want: []string{"container migrate: envFrom Secret creditrecon-draw, but `creditrecon migrate` does not draw"},
		},
		{
			name: "in migrate as a file",
			patch: func(p pod) {
				p.spec.Volumes = append(p.spec.Volumes, corev1.Volume{Name: "keys", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
					Sources: []corev1.VolumeProjection{{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: drawSecretName}}}}}}})
				p.migrate.VolumeMounts = append(p.migrate.VolumeMounts, corev1.VolumeMount{Name: "keys", MountPath: "/etc/creditrecon/keys", ReadOnly: true})
			},
			want: []string{"container migrate: mounts Secret creditrecon-draw at /etc/creditrecon/keys, but `creditrecon migrate` does not draw"},
		},
	}
	// Every planning command needs it, whatever the Job: the checks go by the subcommand.
	for _, cmd := range planningCommands {
		tests = append(tests, drawCase{
			name:  cmd + " without it",
			patch: func(p pod) { p.run.Args, p.env.Name = []string{cmd}, "UNRELATED" },
			want:  []string{"container creditrecon: no CREDITRECON_DRAW_SECRET: `creditrecon " + cmd + "` would exit 2"},
		})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, cfg := nightly, config
			cj := nightly.value.(*batchv1.CronJob).DeepCopy()
			cm := config.value.(*corev1.ConfigMap).DeepCopy()
			n.value, cfg.value = cj, cm
			spec := &cj.Spec.JobTemplate.Spec.Template.Spec
			p := pod{spec: spec, configMapData: cm.Data}
			if i := slices.IndexFunc(spec.Containers, func(ct corev1.Container) bool { return ct.Name == mainContainer }); i >= 0 {
				p.run = &spec.Containers[i]
			}
			if i := slices.IndexFunc(spec.InitContainers, func(ct corev1.Container) bool { return ct.Name == migrateContainer }); i >= 0 {
				p.migrate = &spec.InitContainers[i]
			}
			if p.run == nil || p.migrate == nil {
				t.Fatalf("CronJob/%s: no container %q or no init container %q", nightlyCronJob, mainContainer, migrateContainer)
			}
			if i := slices.IndexFunc(p.run.Env, func(e corev1.EnvVar) bool { return e.Name == drawSecretEnv }); i >= 0 {
				p.env = &p.run.Env[i]
			}
			if p.env == nil || p.env.ValueFrom == nil || p.env.ValueFrom.SecretKeyRef == nil {
				t.Fatalf("CronJob/%s: the run has no %s from a Secret", nightlyCronJob, drawSecretEnv)
			}
			if tt.patch != nil {
				tt.patch(p)
			}
			problems := check("production", []object{n, cfg, termsCM})
			if tt.name == "as shipped" && len(problems) > 0 {
				t.Errorf("got problems, want none:\n%s", strings.Join(problems, "\n"))
			}
			// The problems of the draw secret. A patch may break other rules too: changed args
			// are not the nightly's, which that check reports by quoting them.
			var draw []string
			for _, p := range problems {
				if strings.Contains(p, literal) {
					t.Errorf("a problem prints the secret's value: %s", p)
				}
				if strings.HasPrefix(p, "CronJob/"+nightlyCronJob+": args [") {
					continue
				}
				if strings.Contains(p, drawSecretEnv) || strings.Contains(p, drawSecretName) {
					draw = append(draw, p)
				}
			}
			if len(tt.want) == 0 && len(draw) > 0 {
				t.Errorf("got draw secret problems, want none:\n%s", strings.Join(draw, "\n"))
			}
			for _, want := range tt.want {
				if !slices.ContainsFunc(draw, func(p string) bool { return strings.Contains(p, want) }) {
					t.Errorf("problems do not report %q; got:\n%s", want, strings.Join(problems, "\n"))
				}
			}
			if len(draw) > len(tt.want) {
				t.Errorf("got %d draw secret problems, want %d:\n%s", len(draw), len(tt.want), strings.Join(draw, "\n"))
			}
		})
	}
}

func TestDecodeIsStrict(t *testing.T) {
	const cronJob = "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: x\nspec:\n  schedule: \"@daily\"\n"
	const prometheusRule = "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n  name: x\nspec:\n  groups:\n" +
		"    - name: g\n      rules:\n        - alert: A\n          expr: vector(1)\n          keep_firing_for: 1h\n"
	tests := []struct {
		name    string
		doc     string
		wantErr string // empty: decodes
	}{
		{"valid", cronJob, ""},
		{"unknown field", cronJob + "  timezone: Etc/UTC\n", `unknown field "spec.timezone"`},
		{"field in the wrong case", cronJob + "  TimeZone: Etc/UTC\n", `unknown field "spec.TimeZone"`},
		{"duplicate field", cronJob + "  schedule: \"@hourly\"\n", `"schedule" already set in map`},
		{"wrong type", cronJob + "  startingDeadlineSeconds: soon\n", `cannot unmarshal string`},
		{"shipped secret", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creditrecon-db\n", "the cluster admin creates Secrets"},
		{"unexpected kind", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\n", `no check for apps/v1 Deployment`},
		{"old API version", "apiVersion: batch/v1beta1\nkind: CronJob\nmetadata:\n  name: x\n", `no check for batch/v1beta1 CronJob`},
		{"valid PrometheusRule", prometheusRule, ""},
		{"unknown field in a rule", prometheusRule + "          keepFiringFor: 1h\n", `unknown field "spec.groups[0].rules[0].keepFiringFor"`},
		{"PrometheusRule of another group", strings.Replace(prometheusRule, "monitoring.coreos.com/v1", "monitoring.example.com/v1", 1),
			`no check for monitoring.example.com/v1 PrometheusRule`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decode([]byte(tt.doc))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("decode: got %v, want no error", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("decode: got %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestExitCodesMatchTheBinary(t *testing.T) {
	binary := map[int32]string{
		exitcode.OK:          "OK",
		exitcode.Failed:      "Failed",
		exitcode.Usage:       "Usage",
		exitcode.Locked:      "Locked",
		exitcode.Interrupted: "Interrupted",
	}
	got, want := slices.Sorted(maps.Keys(exitCodes)), slices.Sorted(maps.Keys(binary))
	if !slices.Equal(got, want) {
		t.Errorf("exit codes: the manifests' test knows %v, internal/exitcode has %v", got, want)
	}
	if exitUsage != exitcode.Usage {
		t.Errorf("exitUsage = %d, internal/exitcode.Usage = %d", exitUsage, exitcode.Usage)
	}
}

// TestProgramFlagsMatchTheBinary compares programFlags with the program flags that
// cmd/creditrecon refuses beside a terms file: the list literal in its function programFlags
// (config.go). A flag missing here could be set next to the terms file unnoticed, and every
// planning pod would exit 2.
func TestProgramFlagsMatchTheBinary(t *testing.T) {
	const file = "../cmd/creditrecon/config.go"
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	var binary []string
	found := false
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Name.Name != "programFlags" || fn.Body == nil {
			continue
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			r, ok := n.(*ast.RangeStmt)
			if !ok || found {
				return !found
			}
			lit, ok := r.X.(*ast.CompositeLit)
			if arr, isArr := lit.Type.(*ast.ArrayType); !ok || !isArr || fmt.Sprint(arr.Elt) != "string" {
				return true
			}
			found = true
			for _, e := range lit.Elts {
				b, ok := e.(*ast.BasicLit)
				if !ok || b.Kind != token.STRING {
					t.Fatalf("%s: programFlags lists %T, not a string literal", file, e)
				}
				v, err := strconv.Unquote(b.Value)
				if err != nil {
					t.Fatal(err)
				}
				binary = append(binary, v)
			}
			return false
		})
	}
	if !found {
		t.Fatalf("%s: no `for ... range []string{...}` in func programFlags; update this test to where the binary lists its program flags", file)
	}
	if got, want := slices.Sorted(slices.Values(programFlags)), slices.Sorted(slices.Values(binary)); !slices.Equal(got, want) {
		t.Errorf("program flags: the manifests' test knows %q, cmd/creditrecon refuses beside a terms file %q", got, want)
	}
	// The binary reads each from CREDITRECON_ and the flag's name, upper case, - as _.
	if src, err := os.ReadFile(file); err != nil {
		t.Fatal(err)
	} else if !strings.Contains(string(src), `"CREDITRECON_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))`) {
		t.Errorf("%s no longer names the program flags' variables as programFlagEnv does; update programFlagEnv", file)
	}
}

// renderObjects renders the kustomization in dir with `kubectl kustomize` and decodes every
// object in it strictly.
func renderObjects(t *testing.T, dir string) []object {
	t.Helper()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatalf("kubectl is not installed: this test renders the manifests with `kubectl kustomize` (kubectl 1.27 or newer; CI installs it): %v", err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(kubectl, "kustomize", dir)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, stderr.Bytes())
	}
	var objs []object
	for i, doc := range splitDocuments(out) {
		o, err := decode(doc)
		if err != nil {
			t.Errorf("document %d: %v", i, err)
			continue
		}
		objs = append(objs, o)
	}
	if len(objs) == 0 && !t.Failed() {
		t.Fatalf("kubectl kustomize %s rendered nothing", dir)
	}
	return objs
}

var documentSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// splitDocuments splits a multi-document YAML stream at its "---" lines.
func splitDocuments(b []byte) [][]byte {
	var docs [][]byte
	for _, d := range documentSeparator.Split(string(b), -1) {
		if strings.TrimSpace(d) != "" {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

// object is one decoded manifest.
type object struct {
	kind, name, namespace string
	value                 any // *batchv1.CronJob, *batchv1.Job, *corev1.ServiceAccount, *corev1.ConfigMap or *prometheusRule
}

func (o object) id() string { return o.kind + "/" + o.name }

// podSpec returns o's pod template's spec, or nil when it has none.
func (o object) podSpec() *corev1.PodSpec {
	switch v := o.value.(type) {
	case *batchv1.CronJob:
		return &v.Spec.JobTemplate.Spec.Template.Spec
	case *batchv1.Job:
		return &v.Spec.Template.Spec
	}
	return nil
}

// containers returns the init containers and containers of o's pod template, if it has one.
func (o object) containers() []corev1.Container {
	pod := o.podSpec()
	if pod == nil {
		return nil
	}
	return slices.Concat(pod.InitContainers, pod.Containers)
}

// newObject makes the typed value a document of each kind the manifests may hold decodes into.
var newObject = map[string]func() any{
	"v1 ServiceAccount": func() any { return new(corev1.ServiceAccount) },
	"v1 ConfigMap":      func() any { return new(corev1.ConfigMap) },
	"batch/v1 CronJob":  func() any { return new(batchv1.CronJob) },
	"batch/v1 Job":      func() any { return new(batchv1.Job) },
	// The prometheus-operator's custom resource, in the shape of its CRD (monitoring_test.go).
	"monitoring.coreos.com/v1 PrometheusRule": func() any { return new(prometheusRule) },
}

// decode decodes one YAML document into its k8s.io/api type the way the API server does with
// strict field validation: field names are case-sensitive, and unknown or duplicate fields are
// errors.
func decode(doc []byte) (object, error) {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return object{}, err
	}
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := json.Unmarshal(js, &head); err != nil {
		return object{}, err
	}
	if head.Kind == "Secret" {
		return object{}, errors.New("a Secret in the manifests: the cluster admin creates Secrets (k8s/README.md); never ship one")
	}
	newValue, ok := newObject[head.APIVersion+" "+head.Kind]
	if !ok {
		return object{}, fmt.Errorf("no check for %s %s: add its type and checks to this test", head.APIVersion, head.Kind)
	}
	value := newValue()
	strict, err := kjson.UnmarshalStrict(js, value)
	if err != nil {
		return object{}, fmt.Errorf("decode %s: %w", head.Kind, err)
	}
	if len(strict) > 0 {
		return object{}, fmt.Errorf("decode %s: %w", head.Kind, errors.Join(strict...))
	}
	meta := value.(interface {
		GetName() string
		GetNamespace() string
	})
	return object{kind: head.Kind, name: meta.GetName(), namespace: meta.GetNamespace(), value: value}, nil
}

// check returns what is wrong with the objects of one kustomization. env is the environment
// they deploy to, or empty for a template whose placeholders are expected.
func check(env string, objs []object) []string {
	c := &checker{env: env, configMaps: map[string]*corev1.ConfigMap{}}
	for _, o := range objs {
		if cm, ok := o.value.(*corev1.ConfigMap); ok {
			c.configMaps[o.name] = cm
		}
	}
	var cronJobs []object
	for _, o := range objs {
		c.object(o)
		if o.kind == "CronJob" {
			cronJobs = append(cronJobs, o)
		}
	}
	c.cronJobsAgree(cronJobs)
	c.cronJobsTakeTurns(cronJobs)
	c.metricsArePushed(objs)
	return c.problems
}

type checker struct {
	env        string
	configMaps map[string]*corev1.ConfigMap // rendered with the objects checked, by name
	problems   []string
}

func (c *checker) errorf(where, format string, args ...any) {
	c.problems = append(c.problems, where+": "+fmt.Sprintf(format, args...))
}

var (
	dns1123Label     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	dns1123Subdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	roleARN          = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]+$`)
	variableRef      = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)
)

func (c *checker) object(o object) {
	where := o.id()
	if c.env != "" && o.namespace == "" {
		c.errorf(where, "has no namespace: the %s environment component must set it", c.env)
	}
	switch v := o.value.(type) {
	case *batchv1.CronJob:
		// The CronJob controller appends 11 characters to name its Jobs, and Job names end up
		// in 63-character label values. An Indexed Job's pods are named after the Job and
		// their index, which must fit too.
		suffix := indexSuffix(&v.Spec.JobTemplate.Spec)
		if limit := 52 - len(suffix); len(o.name) > limit || !dns1123Subdomain.MatchString(o.name) {
			why := ""
			if suffix != "" {
				why = fmt.Sprintf(" (the host names of its Jobs' pods end in %q)", suffix)
			}
			c.errorf(where, "name is %d characters, want a DNS-1123 subdomain of at most %d%s", len(o.name), limit, why)
		}
		c.cronJob(where, v)
	case *batchv1.Job:
		if suffix := indexSuffix(&v.Spec); suffix != "" {
			if name := o.name + suffix; len(name) > 63 || !dns1123Label.MatchString(name) {
				c.errorf(where, "name and %q are not a valid DNS-1123 label (at most 63 characters): the API server rejects an Indexed Job whose pods' host names would not be", suffix)
			}
		} else if len(o.name) > 63 || !dns1123Label.MatchString(o.name) {
			c.errorf(where, "name is not a valid DNS-1123 label (at most 63 characters)")
		}
		c.jobSpec(where, &v.Spec)
	case *corev1.ServiceAccount:
		if len(o.name) > 63 || !dns1123Label.MatchString(o.name) {
			c.errorf(where, "name is not a valid DNS-1123 label (at most 63 characters)")
		}
		c.serviceAccount(where, v)
	case *corev1.ConfigMap:
		if len(o.name) > 63 || !dns1123Label.MatchString(o.name) {
			c.errorf(where, "name is not a valid DNS-1123 label (at most 63 characters)")
		}
		c.configMapHoldsNoDrawSecret(where, v)
		switch {
		case o.name == dashboardConfigMap:
			c.dashboard(where, v)
		case strings.HasPrefix(o.name, termsConfigMap):
			c.termsConfigMap(where, o.name, v)
		default:
			c.configMap(where, v)
		}
	case *prometheusRule:
		if len(o.name) > 253 || !dns1123Subdomain.MatchString(o.name) {
			c.errorf(where, "name is not a valid DNS-1123 subdomain")
		}
		c.prometheusRule(where, v)
	}
}

func (c *checker) cronJob(where string, cj *batchv1.CronJob) {
	s := cj.Spec
	if strings.Contains(s.Schedule, "TZ=") {
		c.errorf(where, "schedule %q sets a time zone; the API server wants it in timeZone", s.Schedule)
	}
	sched, err := cron.ParseStandard(s.Schedule)
	if err != nil {
		c.errorf(where, "schedule %q: %v", s.Schedule, err)
	}
	var loc *time.Location
	if s.TimeZone == nil {
		c.errorf(where, "no timeZone: the schedule would follow the kube-controller-manager's local time")
	} else if loc, err = time.LoadLocation(*s.TimeZone); err != nil {
		c.errorf(where, "timeZone %q: %v", *s.TimeZone, err)
	} else if !isUTC(loc) {
		c.errorf(where, "timeZone %q is not UTC: the nightly schedule is in UTC", *s.TimeZone)
	}
	if s.ConcurrencyPolicy != batchv1.ForbidConcurrent {
		c.errorf(where, "concurrencyPolicy is %q, want Forbid", s.ConcurrencyPolicy)
	}
	switch d := s.StartingDeadlineSeconds; {
	case d == nil:
		c.errorf(where, "no startingDeadlineSeconds: a missed night would start whenever the controller notices")
	case *d <= 10: // the controller checks every 10 s, so a shorter deadline can miss every start
		c.errorf(where, "startingDeadlineSeconds is %d, want more than 10", *d)
	}
	if s.SuccessfulJobsHistoryLimit == nil || s.FailedJobsHistoryLimit == nil {
		c.errorf(where, "no successfulJobsHistoryLimit or failedJobsHistoryLimit")
	}
	if want, ok := cronJobArgs[cj.Name]; ok {
		pod := &s.JobTemplate.Spec.Template.Spec
		if i := slices.IndexFunc(pod.Containers, func(ct corev1.Container) bool { return ct.Name == mainContainer }); i >= 0 {
			args, sharded := pod.Containers[i].Args, ""
			if cj.Name == shardableCronJob { // the shard flag is checked with the Job's spec
				_, args = shardFlag(args)
				sharded = " (sharded: plus --shard $(" + completionIndexVar + ")/N)"
			}
			if !slices.Equal(args, want) {
				c.errorf(where, "args %q, want %q%s", pod.Containers[i].Args, want, sharded)
			}
		}
	}
	// `run` without --as-of takes today's 00:00 as its cutoff, on the day each pod starts. All
	// the pods of one night's Job (retries included) must start on the day it was scheduled.
	if sched != nil && loc != nil && s.StartingDeadlineSeconds != nil && s.JobTemplate.Spec.ActiveDeadlineSeconds != nil {
		first := sched.Next(time.Date(2026, time.January, 1, 0, 0, 0, 0, loc).Add(-time.Second))
		last := first.Add(time.Duration(*s.StartingDeadlineSeconds+*s.JobTemplate.Spec.ActiveDeadlineSeconds) * time.Second)
		if y, m, d := first.Date(); !sameDay(last, y, m, d) {
			c.errorf(where, "a Job scheduled at %s can start pods until %s, the next day: they would compute another cutoff",
				first.Format("15:04"), last.Format("15:04"))
		}
	}
	c.jobSpec(where, &s.JobTemplate.Spec)
}

func isUTC(loc *time.Location) bool {
	for _, m := range []time.Month{time.January, time.July} {
		if _, offset := time.Date(2026, m, 1, 0, 0, 0, 0, loc).Zone(); offset != 0 {
			return false
		}
	}
	return true
}

func sameDay(t time.Time, y int, m time.Month, d int) bool {
	ty, tm, td := t.Date()
	return ty == y && tm == m && td == d
}

// cronJobsAgree checks that the weekly full run is the nightly run but for its schedule, the
// main container's args and the labels: the same hardening, migrations, pod failure policy,
// deadlines, history limits and resources, in base and after each overlay's patches.
func (c *checker) cronJobsAgree(cronJobs []object) {
	var nightly, weekly *batchv1.CronJob
	for _, o := range cronJobs {
		switch o.name {
		case nightlyCronJob:
			nightly = o.value.(*batchv1.CronJob)
		case weeklyFullCronJob:
			weekly = o.value.(*batchv1.CronJob)
		}
	}
	if nightly == nil || weekly == nil {
		return
	}
	// The weekly spec with what may differ taken from the nightly one.
	w := weekly.Spec.DeepCopy()
	w.Schedule = nightly.Spec.Schedule
	w.JobTemplate.ObjectMeta = nightly.Spec.JobTemplate.ObjectMeta
	w.JobTemplate.Spec.Template.ObjectMeta = nightly.Spec.JobTemplate.Spec.Template.ObjectMeta
	if n := &nightly.Spec.JobTemplate.Spec; isIndexed(n) {
		// A sharded nightly run (components/sharded-nightly) has the settings of an Indexed Job,
		// backoffLimit included; the weekly full run stays one pod with a backoffLimit of its own.
		ws := &w.JobTemplate.Spec
		ws.CompletionMode, ws.Completions, ws.Parallelism = n.CompletionMode, n.Completions, n.Parallelism
		ws.BackoffLimit, ws.BackoffLimitPerIndex, ws.MaxFailedIndexes = n.BackoffLimit, n.BackoffLimitPerIndex, n.MaxFailedIndexes
	}
	nightlyPod, weeklyPod := &nightly.Spec.JobTemplate.Spec.Template.Spec, &w.JobTemplate.Spec.Template.Spec
	i := slices.IndexFunc(nightlyPod.Containers, func(ct corev1.Container) bool { return ct.Name == mainContainer })
	j := slices.IndexFunc(weeklyPod.Containers, func(ct corev1.Container) bool { return ct.Name == mainContainer })
	if i >= 0 && j >= 0 {
		weeklyPod.Containers[j].Args = nightlyPod.Containers[i].Args
	}
	got, err1 := toJSONValue(w)
	want, err2 := toJSONValue(&nightly.Spec)
	if err := errors.Join(err1, err2); err != nil {
		c.errorf("CronJob/"+weeklyFullCronJob, "%v", err)
		return
	}
	for _, d := range jsonDiff("spec", got, want) {
		c.errorf("CronJob/"+weeklyFullCronJob, "%s, CronJob/%s's %s: the two must differ only in schedule, args and labels (and, when the nightly run is sharded, in its Indexed Job settings)",
			d.path+" is "+d.got, nightlyCronJob, d.want)
	}
}

func toJSONValue(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	return out, json.Unmarshal(b, &out)
}

type difference struct{ path, got, want string }

// jsonDiff returns where the decoded JSON values got and want differ.
func jsonDiff(path string, got, want any) []difference {
	gm, gok := got.(map[string]any)
	wm, wok := want.(map[string]any)
	if gok && wok {
		keys := slices.Concat(slices.Collect(maps.Keys(gm)), slices.Collect(maps.Keys(wm)))
		slices.Sort(keys)
		var diffs []difference
		for _, k := range slices.Compact(keys) {
			diffs = append(diffs, jsonDiff(path+"."+k, gm[k], wm[k])...)
		}
		return diffs
	}
	gs, gok := got.([]any)
	ws, wok := want.([]any)
	if gok && wok && len(gs) == len(ws) {
		var diffs []difference
		for i := range gs {
			diffs = append(diffs, jsonDiff(fmt.Sprintf("%s[%d]", path, i), gs[i], ws[i])...)
		}
		return diffs
	}
	if reflect.DeepEqual(got, want) {
		return nil
	}
	show := func(v any) string {
		if v == nil {
			return "missing"
		}
		b, _ := json.Marshal(v)
		return string(b)
	}
	return []difference{{path, show(got), show(want)}}
}

// cronJobsTakeTurns checks that no two CronJobs can run at once in a week, Sunday included. A
// Job may start up to startingDeadlineSeconds after its scheduled time and its pods run until
// activeDeadlineSeconds after that, then get terminationGracePeriodSeconds to exit. Every
// creditrecon run takes the same advisory lock: of two runs at once, one exits 3.
func (c *checker) cronJobsTakeTurns(cronJobs []object) {
	type window struct {
		cronJob    string
		start, end time.Time
	}
	// The week of Sunday 2026-01-04, and the runs of the Saturday before that reach into it.
	from := time.Date(2026, time.January, 3, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(0, 0, 8)
	var windows []window
	for _, o := range cronJobs {
		s := o.value.(*batchv1.CronJob).Spec
		sched, err := cron.ParseStandard(s.Schedule)
		if err != nil || s.TimeZone == nil || s.StartingDeadlineSeconds == nil || s.JobTemplate.Spec.ActiveDeadlineSeconds == nil {
			continue // reported by cronJob
		}
		loc, err := time.LoadLocation(*s.TimeZone)
		if err != nil {
			continue
		}
		grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
		if g := s.JobTemplate.Spec.Template.Spec.TerminationGracePeriodSeconds; g != nil {
			grace = *g
		}
		length := time.Duration(*s.StartingDeadlineSeconds+*s.JobTemplate.Spec.ActiveDeadlineSeconds+grace) * time.Second
		for t, n := sched.Next(from.In(loc).Add(-time.Second)), 0; t.Before(to) && n < 2000; t, n = sched.Next(t), n+1 {
			windows = append(windows, window{o.id(), t.UTC(), t.Add(length).UTC()})
		}
	}
	slices.SortStableFunc(windows, func(a, b window) int { return a.start.Compare(b.start) })
	latest := map[string]window{} // per CronJob, its window that ends last among those started so far
	reported := map[[2]string]bool{}
	for _, w := range windows {
		for _, other := range slices.Sorted(maps.Keys(latest)) {
			o := latest[other]
			pair := [2]string{min(o.cronJob, w.cronJob), max(o.cronJob, w.cronJob)}
			if other == w.cronJob || !o.end.After(w.start) || reported[pair] {
				continue
			}
			reported[pair] = true
			c.errorf(pair[0]+" and "+pair[1], "can run at once: on %s from %s to %s and from %s to %s; one of the two would find the advisory lock held and exit 3",
				o.start.Format("Monday 2006-01-02"), o.start.Format("15:04"), o.end.Format("15:04"), w.start.Format("15:04"), w.end.Format("15:04"))
		}
		if l, ok := latest[w.cronJob]; !ok || w.end.After(l.end) {
			latest[w.cronJob] = w
		}
	}
}

func (c *checker) jobSpec(where string, spec *batchv1.JobSpec) {
	indexed := isIndexed(spec)
	if spec.BackoffLimit == nil && (!indexed || spec.BackoffLimitPerIndex == nil) {
		c.errorf(where, "no backoffLimit")
	}
	if spec.ActiveDeadlineSeconds == nil {
		c.errorf(where, "no activeDeadlineSeconds: a hung run would hold the lock forever")
	}
	if spec.TTLSecondsAfterFinished == nil {
		c.errorf(where, "no ttlSecondsAfterFinished: finished Jobs would pile up")
	}
	if indexed {
		c.indexedJob(where, spec)
	} else {
		// Unsharded, one pod handles a night. More pods at once would each run the whole night,
		// and all but one would find the advisory lock held and exit 3.
		if (spec.Completions != nil && *spec.Completions != 1) || (spec.Parallelism != nil && *spec.Parallelism != 1) {
			c.errorf(where, "completions %s and parallelism %s: want one pod at a time (both unset or 1); to shard a run, use an Indexed Job",
				optionalInt(spec.Completions), optionalInt(spec.Parallelism))
		}
		if spec.BackoffLimitPerIndex != nil {
			c.errorf(where, "backoffLimitPerIndex requires completionMode Indexed; the API server rejects it")
		}
		if spec.MaxFailedIndexes != nil {
			c.errorf(where, "maxFailedIndexes requires completionMode Indexed; the API server rejects it")
		}
	}
	pod := &spec.Template.Spec
	c.podFailurePolicy(where, spec)
	c.pod(where, pod)
	if i := slices.IndexFunc(pod.Containers, func(ct corev1.Container) bool { return ct.Name == mainContainer }); i >= 0 {
		c.command(where, spec, &pod.Containers[i])
	} else {
		c.errorf(where, "no container named %q", mainContainer)
	}
}

func isIndexed(spec *batchv1.JobSpec) bool {
	return spec.CompletionMode != nil && *spec.CompletionMode == batchv1.IndexedCompletion
}

// indexSuffix returns what the Job controller appends to an Indexed Job's name for the host
// names of its pods, "-" and the highest index; "" for other Jobs.
func indexSuffix(spec *batchv1.JobSpec) string {
	if !isIndexed(spec) || spec.Completions == nil || *spec.Completions < 1 {
		return ""
	}
	return fmt.Sprintf("-%d", *spec.Completions-1)
}

// indexedJob checks the settings of an Indexed Job, which shards a run: one index, and one pod,
// per shard (checker.shard checks the args).
func (c *checker) indexedJob(where string, spec *batchv1.JobSpec) {
	switch {
	case spec.Completions == nil || *spec.Completions < 1:
		c.errorf(where, "completionMode Indexed with completions %s: want N, the number of shards", optionalInt(spec.Completions))
	case spec.Parallelism == nil || *spec.Parallelism != *spec.Completions: // parallelism defaults to 1
		c.errorf(where, "completions %d and parallelism %s: want both N, so that every shard runs at once and the night ends within activeDeadlineSeconds",
			*spec.Completions, optionalInt(spec.Parallelism))
	}
	switch {
	case spec.BackoffLimitPerIndex == nil:
		c.errorf(where, "completionMode Indexed without backoffLimitPerIndex: backoffLimit counts the failures of all shards together, so one failing shard would use up the others' retries")
	case spec.BackoffLimit != nil && spec.Completions != nil:
		// The Job fails at once when more than backoffLimit of its pods have failed, whichever
		// their index; every index has used its retries after completions ×
		// (backoffLimitPerIndex + 1) failures.
		least := int64(*spec.Completions)*(int64(*spec.BackoffLimitPerIndex)+1) - 1
		if int64(*spec.BackoffLimit) < least {
			c.errorf(where, "backoffLimit %d would fail the Job before every shard has used its backoffLimitPerIndex (%d) retries: it counts the failures of all shards together. Leave it unset, or at least completions × (backoffLimitPerIndex + 1) - 1 = %d",
				*spec.BackoffLimit, *spec.BackoffLimitPerIndex, least)
		}
	}
	if m := spec.MaxFailedIndexes; m != nil && spec.Completions != nil && *m > *spec.Completions {
		c.errorf(where, "maxFailedIndexes %d is above completions %d; the API server rejects it", *m, *spec.Completions)
	}
}

func optionalInt(p *int32) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}

func (c *checker) podFailurePolicy(where string, spec *batchv1.JobSpec) {
	pfp := spec.PodFailurePolicy
	if pfp == nil {
		c.errorf(where, "no podFailurePolicy: exit code %d (bad configuration) would be retried", exitUsage)
		return
	}
	pod := &spec.Template.Spec
	if pod.RestartPolicy != corev1.RestartPolicyNever {
		c.errorf(where, "restartPolicy is %q: a podFailurePolicy needs Never", pod.RestartPolicy)
	}
	if p := spec.PodReplacementPolicy; p != nil && *p != batchv1.Failed {
		c.errorf(where, "podReplacementPolicy is %q: a podFailurePolicy needs Failed", *p)
	}
	var names []string
	for _, ct := range slices.Concat(pod.InitContainers, pod.Containers) {
		names = append(names, ct.Name)
	}
	ignoresDisruption := false
	for i, r := range pfp.Rules {
		rw := fmt.Sprintf("%s: podFailurePolicy.rules[%d]", where, i)
		switch r.Action {
		case batchv1.PodFailurePolicyActionFailJob, batchv1.PodFailurePolicyActionIgnore, batchv1.PodFailurePolicyActionCount:
		case batchv1.PodFailurePolicyActionFailIndex:
			if spec.BackoffLimitPerIndex == nil {
				c.errorf(rw, "action FailIndex requires backoffLimitPerIndex; the API server rejects it")
			}
		default:
			c.errorf(rw, "action %q: want FailJob, FailIndex, Ignore or Count", r.Action)
		}
		if (r.OnExitCodes == nil) == (len(r.OnPodConditions) == 0) {
			c.errorf(rw, "want exactly one of onExitCodes and onPodConditions")
		}
		for _, pc := range r.OnPodConditions {
			if r.Action == batchv1.PodFailurePolicyActionIgnore && pc.Type == corev1.DisruptionTarget &&
				(pc.Status == "" || pc.Status == corev1.ConditionTrue) {
				ignoresDisruption = true
			}
		}
		ec := r.OnExitCodes
		if ec == nil {
			continue
		}
		if ec.ContainerName != nil && !slices.Contains(names, *ec.ContainerName) {
			c.errorf(rw, "containerName %q is not a container of the pod (%q)", *ec.ContainerName, names)
		}
		if ec.Operator != batchv1.PodFailurePolicyOnExitCodesOpIn && ec.Operator != batchv1.PodFailurePolicyOnExitCodesOpNotIn {
			c.errorf(rw, "unknown operator %q", ec.Operator)
		}
		if len(ec.Values) == 0 || !slices.IsSorted(ec.Values) || len(slices.Compact(slices.Clone(ec.Values))) != len(ec.Values) {
			c.errorf(rw, "values %v must be sorted and without duplicates", ec.Values)
		}
		for _, v := range ec.Values {
			if _, ok := exitCodes[v]; !ok {
				c.errorf(rw, "exit code %d is not one creditrecon returns (%v)", v, slices.Sorted(maps.Keys(exitCodes)))
			}
			if v == 0 && ec.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn {
				c.errorf(rw, "exit code 0 is success; the API server rejects it with In")
			}
		}
	}
	for _, name := range names {
		if a := exitCodeAction(pfp.Rules, name, exitUsage); a != batchv1.PodFailurePolicyActionFailJob {
			matched := "no rule matches it"
			if a != "" {
				matched = fmt.Sprintf("the first rule matching it says %s", a)
			}
			c.errorf(where, "exit code %d of container %q does not fail the Job at once (%s): a bad configuration would be retried",
				exitUsage, name, matched)
		}
	}
	if !ignoresDisruption {
		c.errorf(where, "no rule ignores the DisruptionTarget pod condition: evictions and node drains would count as failures")
	}
}

// exitCodeAction returns the action of the first rule that matches container exiting with
// code, as the Job controller picks it, or "" when no rule does.
func exitCodeAction(rules []batchv1.PodFailurePolicyRule, container string, code int32) batchv1.PodFailurePolicyAction {
	for _, r := range rules {
		ec := r.OnExitCodes
		if ec == nil || (ec.ContainerName != nil && *ec.ContainerName != container) {
			continue
		}
		in := slices.Contains(ec.Values, code)
		if (ec.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn) == in {
			return r.Action
		}
	}
	return ""
}

func (c *checker) pod(where string, pod *corev1.PodSpec) {
	if pod.ServiceAccountName != serviceAccount {
		c.errorf(where, "serviceAccountName is %q, want %q (its IAM role reaches S3)", pod.ServiceAccountName, serviceAccount)
	}
	var mainImage string
	if i := slices.IndexFunc(pod.Containers, func(ct corev1.Container) bool { return ct.Name == mainContainer }); i >= 0 {
		mainImage = pod.Containers[i].Image
	}
	if len(pod.InitContainers) == 0 || pod.InitContainers[0].Name != migrateContainer ||
		!slices.Equal(pod.InitContainers[0].Args, []string{"migrate"}) {
		c.errorf(where, "%q must be the first init container, running `creditrecon migrate` before the run and never beside it", migrateContainer)
	} else if pod.InitContainers[0].Image != mainImage {
		c.errorf(where, "migrate runs image %q, the run %q: the tables must be the run's", pod.InitContainers[0].Image, mainImage)
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	for i, ct := range slices.Concat(pod.InitContainers, pod.Containers) {
		cw := fmt.Sprintf("%s: container %s", where, ct.Name)
		c.image(cw, ct.Image)
		c.securityContext(cw, pod.SecurityContext, ct.SecurityContext)
		c.resources(cw, ct.Resources)
		c.envVars(cw, &ct, databaseSecret(ct.Name))
		c.tmp(cw, &ct, volumes)
		c.terms(cw, &ct, volumes)
		c.drawSecret(cw, &ct, volumes)
		if i < len(pod.InitContainers) || ct.Name != mainContainer { // command checks the main one's
			c.noShard(cw, &ct)
		}
	}
}

// noShard rejects --shard in any form in a container that does not run `creditrecon run`:
// no other subcommand has the flag, and creditrecon rejects an unknown flag with exit code 2.
func (c *checker) noShard(where string, ct *corev1.Container) {
	for _, a := range slices.Concat(ct.Command, ct.Args) {
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if name != a && (name == "shard" || strings.HasPrefix(name, "shard=")) {
			c.errorf(where, "%s: only `creditrecon run` takes --shard; this container would exit %d", a, exitUsage)
		}
	}
}

// shardFlag returns the values of the --shard flags in args, in any of the forms Go's flag
// package accepts (-shard=v, --shard=v, -shard v, --shard v; "" for a --shard without a value),
// and the other args.
func shardFlag(args []string) (values, rest []string) {
	for i := 0; i < len(args); i++ {
		name := strings.TrimPrefix(strings.TrimPrefix(args[i], "-"), "-")
		v, isAssign := strings.CutPrefix(name, "shard=")
		switch {
		case name == args[i] || (name != "shard" && !isAssign):
			rest = append(rest, args[i])
		case isAssign:
			values = append(values, v)
		case i+1 < len(args):
			values = append(values, args[i+1])
			i++
		default:
			values = append(values, "")
		}
	}
	return values, rest
}

var (
	// shardValue is what --shard must be in an Indexed Job: each pod's own index, and N.
	shardValue = regexp.MustCompile(`^\$\(` + completionIndexVar + `\)/([0-9]+)$`)
	// fixedShard is an index written out, the same in every pod.
	fixedShard = regexp.MustCompile(`^[0-9]+/[0-9]+$`)
)

// shard checks the value of `run --shard` in an Indexed Job: $(JOB_COMPLETION_INDEX)/N, with one
// index per shard. A shard without an index would never run, an index without a shard would
// exit 2, and with either no shard would find all N committed to merge the reports.
func (c *checker) shard(where string, spec *batchv1.JobSpec, v string) {
	m := shardValue.FindStringSubmatch(v)
	switch {
	case fixedShard.MatchString(v):
		c.errorf(where, "--shard %s: a fixed index, so every pod of the Indexed Job would run the same shard and the others would never run; want $(%s)/N",
			v, completionIndexVar)
		return
	case m == nil:
		c.errorf(where, "--shard %q: want $(%s)/N, N the number of shards", v, completionIndexVar)
		return
	}
	n, err := strconv.ParseInt(m[1], 10, 32)
	if err != nil || n < 1 {
		c.errorf(where, "--shard %s: N must be a positive integer", v)
		return
	}
	if spec.Completions == nil || int64(*spec.Completions) != n {
		c.errorf(where, "--shard %s: N is %d, completions %s: want completions N, one index per shard", v, n, optionalInt(spec.Completions))
	}
}

func (c *checker) image(where, image string) {
	if image == "" {
		c.errorf(where, "no image")
		return
	}
	if c.env == "" { // templates name the image "creditrecon"; the environments pin it
		return
	}
	if strings.Contains(image, "@sha256:") {
		return
	}
	i := strings.LastIndex(image, ":")
	if i < 0 || strings.Contains(image[i:], "/") || image[i+1:] == "latest" {
		c.errorf(where, "image %q is not pinned to a version", image)
	}
}

func (c *checker) securityContext(where string, pod *corev1.PodSecurityContext, ct *corev1.SecurityContext) {
	if pod == nil {
		pod = &corev1.PodSecurityContext{}
	}
	if ct == nil {
		ct = &corev1.SecurityContext{}
	}
	// The container's settings win over the pod's.
	nonRoot, uid, seccomp := pod.RunAsNonRoot, pod.RunAsUser, pod.SeccompProfile
	if ct.RunAsNonRoot != nil {
		nonRoot = ct.RunAsNonRoot
	}
	if ct.RunAsUser != nil {
		uid = ct.RunAsUser
	}
	if ct.SeccompProfile != nil {
		seccomp = ct.SeccompProfile
	}
	if nonRoot == nil || !*nonRoot {
		c.errorf(where, "runAsNonRoot is not true")
	}
	if uid == nil || *uid != nonRootUID {
		c.errorf(where, "runAsUser is not %d, the image's user", nonRootUID)
	}
	if seccomp == nil || (seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault && seccomp.Type != corev1.SeccompProfileTypeLocalhost) {
		c.errorf(where, "seccompProfile is not RuntimeDefault")
	}
	if ct.ReadOnlyRootFilesystem == nil || !*ct.ReadOnlyRootFilesystem {
		c.errorf(where, "readOnlyRootFilesystem is not true")
	}
	if ct.AllowPrivilegeEscalation == nil || *ct.AllowPrivilegeEscalation {
		c.errorf(where, "allowPrivilegeEscalation is not false")
	}
	if ct.Privileged != nil && *ct.Privileged {
		c.errorf(where, "privileged")
	}
	if caps := ct.Capabilities; caps == nil || !slices.Contains(caps.Drop, "ALL") || len(caps.Add) > 0 {
		c.errorf(where, "capabilities do not drop ALL (and add none)")
	}
}

func (c *checker) resources(where string, r corev1.ResourceRequirements) {
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := r.Requests[name]
		lim, hasLim := r.Limits[name]
		if !hasReq || req.IsZero() {
			c.errorf(where, "no %s request", name)
		}
		if !hasLim || lim.IsZero() {
			c.errorf(where, "no %s limit", name)
		}
		if hasReq && hasLim && req.Cmp(lim) > 0 {
			c.errorf(where, "resources: %s request %s is above its limit %s", name, req.String(), lim.String())
		}
	}
}

// databaseSecret returns the Secret the DATABASE_URL of container comes from, under the key
// dbSecretKey (sql/roles/roles.sql has the roles). `migrate` creates and alters the job-owned
// tables, which only a login in creditrecon_owner may. Every other container runs as a login in
// creditrecon_job, which may not, and must not hold the owner's credentials: the owner could drop
// the triggers that keep grants append-only.
func databaseSecret(container string) string {
	if container == migrateContainer {
		return ownerSecretName
	}
	return dbSecretName
}

func (c *checker) envVars(where string, ct *corev1.Container, secret string) {
	var db *corev1.EnvVar
	for i, e := range ct.Env {
		if e.Name == "DATABASE_URL" {
			db = &ct.Env[i]
		}
		if looksLikeDatabaseURL(e.Value) {
			c.errorf(where, "env %s holds a database URL in plain text; credentials belong in Secret %s", e.Name, secret)
		}
	}
	var ref *corev1.SecretKeySelector
	if db != nil && db.ValueFrom != nil {
		ref = db.ValueFrom.SecretKeyRef
	}
	if db == nil || db.Value != "" || ref == nil || ref.Name != secret || ref.Key != dbSecretKey ||
		(ref.Optional != nil && *ref.Optional) {
		got := "not from a Secret"
		switch {
		case db == nil:
			got = "not set"
		case ref != nil:
			got = "from " + ref.Name + "/" + ref.Key
		}
		c.errorf(where, "DATABASE_URL must come from secretKeyRef %s/%s (not optional), is %s", secret, dbSecretKey, got)
	}
	if !slices.ContainsFunc(ct.EnvFrom, func(e corev1.EnvFromSource) bool {
		return e.ConfigMapRef != nil && e.ConfigMapRef.Name == configMapName
	}) {
		c.errorf(where, "no envFrom ConfigMap %s", configMapName)
	}
}

func looksLikeDatabaseURL(s string) bool {
	s = strings.ToLower(s)
	return strings.Contains(s, "postgres://") || strings.Contains(s, "postgresql://")
}

// tmp checks that ct can write to /tmp, the only place the binary writes, on a bounded volume.
func (c *checker) tmp(where string, ct *corev1.Container, volumes map[string]corev1.Volume) {
	i := slices.IndexFunc(ct.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == "/tmp" })
	if i < 0 {
		c.errorf(where, "nothing mounted at /tmp: the root filesystem is read-only")
		return
	}
	name := ct.VolumeMounts[i].Name
	switch v, ok := volumes[name]; {
	case !ok:
		c.errorf(where, "/tmp is volume %q, which the pod does not define", name)
	case v.EmptyDir == nil:
		c.errorf(where, "/tmp is volume %q, not an emptyDir", name)
	case v.EmptyDir.SizeLimit == nil:
		c.errorf(where, "/tmp is volume %q with no sizeLimit", name)
	}
}

// command checks the main container's arguments: the subcommand, and the flags each kind of
// workload needs. spec is its Job's.
func (c *checker) command(where string, spec *batchv1.JobSpec, ct *corev1.Container) {
	if len(ct.Command) > 0 {
		c.errorf(where, "command %q replaces the image's entrypoint /creditrecon; set args", ct.Command)
	}
	args := ct.Args
	if len(args) == 0 {
		c.errorf(where, "no args: want a creditrecon subcommand")
		return
	}
	// Kubernetes expands $(VAR) in args from the container's environment and leaves an
	// undefined reference as it is, which the binary would then reject or misread. The Job
	// controller adds JOB_COMPLETION_INDEX to it in an Indexed Job.
	indexed := isIndexed(spec)
	defined := map[string]bool{completionIndexVar: indexed}
	for _, e := range ct.Env {
		defined[e.Name] = true
	}
	for _, a := range args {
		for _, m := range variableRef.FindAllStringSubmatch(a, -1) {
			if !defined[m[1]] {
				hint := ""
				if m[1] == completionIndexVar {
					hint = " (the Job controller sets it only in an Indexed Job)"
				}
				c.errorf(where, "args refer to $(%s), which is not defined in the container's environment%s", m[1], hint)
			}
		}
	}

	// Sharding: `run --shard $(JOB_COMPLETION_INDEX)/N` in an Indexed Job of N pods, and an
	// Indexed Job only for that.
	shards, _ := shardFlag(args)
	switch {
	case len(shards) > 0 && args[0] != "run":
		c.errorf(where, "--shard: only `creditrecon run` takes --shard; `creditrecon %s` would exit %d", args[0], exitUsage)
	case len(shards) > 1:
		c.errorf(where, "--shard given %d times, want once", len(shards))
	case len(shards) == 1 && !indexed:
		c.errorf(where, "--shard %s outside an Indexed Job: want completionMode Indexed, completions and parallelism N, and --shard $(%s)/N",
			shards[0], completionIndexVar)
	case len(shards) == 1:
		c.shard(where, spec, shards[0])
	}
	if indexed && (args[0] != "run" || len(shards) == 0) {
		c.errorf(where, "completionMode Indexed, but the args do not shard the work (`run --shard $(%s)/N`): each pod would do all of it, and all but one would find the lock held and exit 3",
			completionIndexVar)
	}

	switch args[0] {
	case "run":
	case "backfill":
		from, okFrom := c.date(where, args, "from")
		to, okTo := c.date(where, args, "to")
		if okFrom && okTo && from.After(to) {
			c.errorf(where, "--from %s is after --to %s", from.Format(time.DateOnly), to.Format(time.DateOnly))
		}
	default:
		c.errorf(where, "args %q: want `run` or `backfill`", args)
	}
}

// date returns the YYYY-MM-DD value of flag name in args. ok is false when it is missing,
// invalid or (in a template) the placeholder.
func (c *checker) date(where string, args []string, name string) (t time.Time, ok bool) {
	v, found := flagValue(args, name)
	switch {
	case !found:
		c.errorf(where, "no --%s", name)
	case v == placeholderDate && c.env == "":
	case v == placeholderDate:
		c.errorf(where, "--%s: %q is a placeholder; set the date", name, v)
	default:
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			c.errorf(where, "--%s: %v", name, err)
			return time.Time{}, false
		}
		return t, true
	}
	return time.Time{}, false
}

// flagValue returns the value of flag name in args, in any of the forms Go's flag package
// accepts for a string flag: -name=v, --name=v, -name v, --name v.
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		a = strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v, true
		}
		if a == name && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}

func (c *checker) serviceAccount(where string, sa *corev1.ServiceAccount) {
	arn := sa.Annotations[roleARNAnnotation]
	switch {
	case !roleARN.MatchString(arn):
		c.errorf(where, "annotation %s is %q, want an IAM role ARN (IRSA)", roleARNAnnotation, arn)
	case c.env != "" && strings.Contains(arn, placeholderRole):
		c.errorf(where, "role ARN %q is the base's placeholder; the %s overlay must set it", arn, c.env)
	}
}

func (c *checker) configMap(where string, cm *corev1.ConfigMap) {
	for k, v := range cm.Data {
		if k == "DATABASE_URL" || looksLikeDatabaseURL(v) {
			c.errorf(where, "%s belongs in Secret %s, not in a ConfigMap", k, dbSecretName)
		}
	}
	switch u := cm.Data["REPORTS_URL"]; {
	case !strings.HasPrefix(u, "s3://"):
		c.errorf(where, "REPORTS_URL %q is not an s3:// URL", u)
	case c.env != "" && strings.Contains(u, placeholderBucket):
		c.errorf(where, "REPORTS_URL %q is the base's placeholder; the %s overlay must set it", u, c.env)
	}
	if f := cm.Data["CREDITRECON_LOG_FORMAT"]; f != "json" {
		c.errorf(where, "CREDITRECON_LOG_FORMAT is %q, want json (structured logs)", f)
	}
	if tz, ok := cm.Data["CREDITRECON_TIMEZONE"]; ok {
		if _, err := time.LoadLocation(tz); err != nil {
			c.errorf(where, "CREDITRECON_TIMEZONE %q: %v", tz, err)
		}
	}
	// Every container reads this ConfigMap (envFrom), and every one that plans reads the terms
	// file: a program variable here would make each of them exit 2. Checked here too because
	// the backfill Jobs read the ConfigMap their environment's overlay renders.
	for _, k := range slices.Sorted(maps.Keys(cm.Data)) {
		if isProgramEnv(k) && cm.Data[k] != "" {
			c.errorf(where, "%s is a program parameter, and the pods run with the terms file (%s): creditrecon would exit %d. Change %s instead",
				k, termsEnv, exitUsage, strings.TrimPrefix(termsSource, "../"))
		}
	}
}

func isProgramEnv(name string) bool {
	return slices.ContainsFunc(programFlags, func(f string) bool { return programFlagEnv(f) == name })
}

// subcommand returns the creditrecon subcommand ct runs: its first argument after the image's
// entrypoint, or "" when it has none.
func subcommand(ct *corev1.Container) string {
	args := ct.Args
	if len(ct.Command) > 0 { // the entrypoint replaced: its first word is the binary (checker.command reports it)
		args = slices.Concat(ct.Command[1:], ct.Args)
	}
	if len(args) == 0 {
		return ""
	}
	return args[0]
}

// terms checks how ct reaches the programs' terms. A container that runs a planning command
// reads them from a file named by CREDITRECON_TERMS, a plain path under a read-only mount of a
// volume of ConfigMap creditrecon-terms that resolves to its key terms.yaml, and gets none of the
// program flags or variables, which beside the file are a usage error. A container that does not
// plan (`migrate`) has neither the variable nor the mount: nothing there reads them.
func (c *checker) terms(where string, ct *corev1.Container, volumes map[string]corev1.Volume) {
	i := slices.IndexFunc(ct.Env, func(e corev1.EnvVar) bool { return e.Name == termsEnv })
	if cmd := subcommand(ct); !slices.Contains(planningCommands, cmd) {
		if i >= 0 {
			c.errorf(where, "%s is set, but `creditrecon %s` does not read the terms; set it only where a command plans (%s)",
				termsEnv, cmd, strings.Join(planningCommands, ", "))
		}
		for _, m := range ct.VolumeMounts {
			if v, ok := volumes[m.Name]; ok && v.ConfigMap != nil && v.ConfigMap.Name == termsConfigMap {
				c.errorf(where, "mounts ConfigMap %s at %s, but `creditrecon %s` does not read the terms", termsConfigMap, m.MountPath, cmd)
			}
		}
		return
	}

	// No program flag or variable beside the terms file.
	var given []string
	for _, a := range slices.Concat(ct.Command, ct.Args) {
		name, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		switch {
		case name == a: // not a flag
		case slices.Contains(programFlags, name):
			given = append(given, "flag "+a)
		case name == termsFlag:
			c.errorf(where, "flag %s: name the terms file only by %s, so that one place says which file a pod reads", a, termsEnv)
		}
	}
	for _, e := range ct.Env {
		if isProgramEnv(e.Name) && (e.Value != "" || e.ValueFrom != nil) {
			given = append(given, "env "+e.Name)
		}
	}
	for _, ef := range ct.EnvFrom {
		if ef.ConfigMapRef == nil || c.configMaps[ef.ConfigMapRef.Name] == nil {
			continue // a ConfigMap rendered elsewhere is checked where it is rendered (checker.configMap)
		}
		for _, k := range slices.Sorted(maps.Keys(c.configMaps[ef.ConfigMapRef.Name].Data)) {
			if isProgramEnv(ef.Prefix+k) && c.configMaps[ef.ConfigMapRef.Name].Data[k] != "" {
				given = append(given, "env "+ef.Prefix+k+" from ConfigMap "+ef.ConfigMapRef.Name)
			}
		}
	}
	if len(given) > 0 {
		c.errorf(where, "%s next to the terms file: program settings are a usage error with %s (creditrecon exits %d, \"set in the terms file\"); change %s instead",
			strings.Join(given, ", "), termsEnv, exitUsage, strings.TrimPrefix(termsSource, "../"))
	}

	// CREDITRECON_TERMS, and the file it names.
	const want = "want a file of a readOnly mount of a volume of ConfigMap " + termsConfigMap + ", key " + termsKey
	if i < 0 {
		c.errorf(where, "no %s: `creditrecon %s` would plan under the built-in seed terms instead of %s (and exit %d once RunPod's versions are in use); %s",
			termsEnv, subcommand(ct), strings.TrimPrefix(termsSource, "../"), exitUsage, want)
		return
	}
	file := ct.Env[i].Value
	if ct.Env[i].ValueFrom != nil || !path.IsAbs(file) || path.Clean(file) != file {
		c.errorf(where, "%s must be a plain absolute path (value: /DIR/%s), is %s", termsEnv, termsKey, describeEnv(ct.Env[i]))
		return
	}
	// The mount that holds the file: the deepest one whose path contains it.
	var mount *corev1.VolumeMount
	for j, m := range ct.VolumeMounts {
		dir := path.Clean(m.MountPath)
		if (file == dir || strings.HasPrefix(file, strings.TrimSuffix(dir, "/")+"/")) && (mount == nil || len(dir) > len(path.Clean(mount.MountPath))) {
			mount = &ct.VolumeMounts[j]
		}
	}
	if mount == nil {
		c.errorf(where, "%s=%s is under no volume mount: the file is not in the image, and creditrecon would exit %d; %s",
			termsEnv, file, exitUsage, want)
		return
	}
	v, ok := volumes[mount.Name]
	switch {
	case !ok:
		c.errorf(where, "%s=%s is in volume %q, which the pod does not define", termsEnv, file, mount.Name)
		return
	case v.ConfigMap == nil || v.ConfigMap.Name != termsConfigMap:
		c.errorf(where, "%s=%s is in volume %q (mounted at %s), which is not ConfigMap %s; %s",
			termsEnv, file, mount.Name, mount.MountPath, termsConfigMap, want)
		return
	}
	if !mount.ReadOnly {
		c.errorf(where, "volume %q (ConfigMap %s) is mounted at %s without readOnly: true; the terms are read, never written",
			mount.Name, termsConfigMap, mount.MountPath)
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(file, path.Clean(mount.MountPath)), "/")
	if mount.SubPath != "" {
		rel = path.Join(mount.SubPath, rel)
	}
	key := rel
	if len(v.ConfigMap.Items) > 0 { // only the listed keys, at the listed paths
		key = ""
		for _, it := range v.ConfigMap.Items {
			if path.Clean(it.Path) == rel {
				key = it.Key
			}
		}
	}
	if key != termsKey {
		got := fmt.Sprintf("key %q", key)
		if key == "" || rel == "" {
			got = "no key of it"
		}
		c.errorf(where, "%s=%s is %s in volume %q of ConfigMap %s, want its key %s", termsEnv, file, got, mount.Name, termsConfigMap, termsKey)
	}
}

func describeEnv(e corev1.EnvVar) string {
	if e.ValueFrom != nil {
		return "from valueFrom"
	}
	return fmt.Sprintf("%q", e.Value)
}

// termsSourceBytes is the file the terms ConfigMap is generated from.
var termsSourceBytes = sync.OnceValues(func() ([]byte, error) { return os.ReadFile(termsSource) })

// termsConfigMap checks the ConfigMap of the programs' terms: its fixed name (the backfill Jobs
// mount it by that name), one key terms.yaml, which the binary's parser accepts and which is
// terms/runpod-2025.yaml byte for byte.
func (c *checker) termsConfigMap(where, name string, cm *corev1.ConfigMap) {
	if name != termsConfigMap {
		c.errorf(where, "name %q: want the fixed name %s (disableNameSuffixHash): the backfill Jobs, rendered from other kustomizations, mount it by that name",
			name, termsConfigMap)
	}
	if keys := slices.Concat(slices.Sorted(maps.Keys(cm.Data)), slices.Sorted(maps.Keys(cm.BinaryData))); !slices.Equal(keys, []string{termsKey}) {
		c.errorf(where, "keys %q, want exactly %q", keys, termsKey)
	}
	data, ok := cm.Data[termsKey]
	if !ok {
		return
	}
	if _, err := terms.Parse(termsKey, []byte(data)); err != nil {
		c.errorf(where, "%s does not parse, and every planning command would exit %d: %s", termsKey, exitUsage, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	switch src, err := termsSourceBytes(); {
	case err != nil:
		c.errorf(where, "%v", err)
	case data != string(src):
		c.errorf(where, "%s is not %s byte for byte: generate it from that file (terms/kustomization.yaml)", termsKey, strings.TrimPrefix(termsSource, "../"))
	}
}

// drawSecret checks how ct gets the draw secret. A container that runs a planning command has
// CREDITRECON_DRAW_SECRET from valueFrom.secretKeyRef creditrecon-draw/secret, not optional, and
// from nothing else: not a literal value in the manifest, not a ConfigMap (a key reference, or
// envFrom), and not in its args, which the process list shows. A container that does not plan
// (`migrate`) has neither the variable nor any reference to Secret creditrecon-draw: it does not
// draw (least privilege).
func (c *checker) drawSecret(where string, ct *corev1.Container, volumes map[string]corev1.Volume) {
	cmd := subcommand(ct)
	plans := slices.Contains(planningCommands, cmd)
	want := fmt.Sprintf("want valueFrom.secretKeyRef %s/%s (not optional)", drawSecretName, drawSecretKey)

	// The variable in env. A duplicate name is a mistake either way: the last one wins.
	var set []corev1.EnvVar
	for _, e := range ct.Env {
		if e.Name == drawSecretEnv {
			set = append(set, e)
		}
	}
	if len(set) > 1 {
		c.errorf(where, "%s is set %d times in env; set it once", drawSecretEnv, len(set))
	}
	for _, e := range set {
		if !plans {
			c.errorf(where, "%s is set, but `creditrecon %s` does not draw: only the containers that plan (%s) get the draw secret (least privilege)",
				drawSecretEnv, cmd, strings.Join(planningCommands, ", "))
			continue
		}
		var ref *corev1.SecretKeySelector
		if e.ValueFrom != nil {
			ref = e.ValueFrom.SecretKeyRef
		}
		switch {
		case e.ValueFrom == nil && e.Value == "":
			c.errorf(where, "%s is empty; %s", drawSecretEnv, want)
		case e.ValueFrom == nil: // never print the value: it may be the secret
			c.errorf(where, "%s has a literal value: the secret would be in the repository and in the pod spec for anyone who can read it; %s", drawSecretEnv, want)
		case e.ValueFrom.ConfigMapKeyRef != nil:
			c.errorf(where, "%s is from ConfigMap %s key %s: a ConfigMap is not secret; %s",
				drawSecretEnv, e.ValueFrom.ConfigMapKeyRef.Name, e.ValueFrom.ConfigMapKeyRef.Key, want)
		case ref == nil:
			c.errorf(where, "%s is not from a Secret; %s", drawSecretEnv, want)
		case ref.Name != drawSecretName || ref.Key != drawSecretKey:
			c.errorf(where, "%s is from Secret %s key %s; %s", drawSecretEnv, ref.Name, ref.Key, want)
		case ref.Optional != nil && *ref.Optional:
			c.errorf(where, "%s is optional: without Secret %s the container would start and plan without the key, and exit %d once the terms draw; a missing Secret must stop it from starting",
				drawSecretEnv, drawSecretName, exitUsage)
		}
	}
	if plans && len(set) == 0 {
		c.errorf(where, "no %s: `creditrecon %s` would exit %d as soon as the terms draw a signup bonus (%s); %s",
			drawSecretEnv, cmd, exitUsage, strings.TrimPrefix(termsSource, "../"), want)
	}

	// The variable from a ConfigMap, whole (envFrom). Only ConfigMaps rendered with the objects
	// can be read here; checker.configMapHoldsNoDrawSecret checks each where it is rendered.
	for _, ef := range ct.EnvFrom {
		if ef.ConfigMapRef == nil || c.configMaps[ef.ConfigMapRef.Name] == nil {
			continue
		}
		for _, k := range slices.Sorted(maps.Keys(c.configMaps[ef.ConfigMapRef.Name].Data)) {
			if ef.Prefix+k != drawSecretEnv {
				continue
			}
			if plans {
				c.errorf(where, "%s from ConfigMap %s (envFrom, key %s): a ConfigMap is not secret; %s",
					drawSecretEnv, ef.ConfigMapRef.Name, k, want)
			} else {
				c.errorf(where, "%s from ConfigMap %s (envFrom, key %s): a ConfigMap is not secret, and `creditrecon %s` does not draw (least privilege)",
					drawSecretEnv, ef.ConfigMapRef.Name, k, cmd)
			}
		}
	}

	// Never in the command line: args are in the pod spec, and expanded in the process list.
	for _, a := range slices.Concat(ct.Command, ct.Args) {
		if strings.Contains(a, "$("+drawSecretEnv+")") {
			c.errorf(where, "args expand $(%s): the secret would be in the command line, which ps and /proc show; creditrecon reads it from the environment only",
				drawSecretEnv)
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		if name != a && strings.Contains(strings.ReplaceAll(strings.ToLower(name), "_", "-"), "draw-secret") {
			c.errorf(where, "flag %s: the draw secret is never an arg (the process list shows args), and creditrecon, which reads it only from %s, would exit %d on the unknown flag",
				a, drawSecretEnv, exitUsage)
		}
	}

	if plans {
		return
	}
	// Least privilege: a container that does not draw reads nothing of Secret creditrecon-draw,
	// under any name or as a file.
	for _, e := range ct.Env {
		if e.Name != drawSecretEnv && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == drawSecretName {
			c.errorf(where, "env %s is from Secret %s, but `creditrecon %s` does not draw (least privilege)", e.Name, drawSecretName, cmd)
		}
	}
	for _, ef := range ct.EnvFrom {
		if ef.SecretRef != nil && ef.SecretRef.Name == drawSecretName {
			c.errorf(where, "envFrom Secret %s, but `creditrecon %s` does not draw (least privilege)", drawSecretName, cmd)
		}
	}
	for _, m := range ct.VolumeMounts {
		if v, ok := volumes[m.Name]; ok && volumeHoldsSecret(v, drawSecretName) {
			c.errorf(where, "mounts Secret %s at %s, but `creditrecon %s` does not draw (least privilege)", drawSecretName, m.MountPath, cmd)
		}
	}
}

// volumeHoldsSecret reports whether v holds Secret name, as a secret volume or a projected one.
func volumeHoldsSecret(v corev1.Volume, name string) bool {
	if v.Secret != nil && v.Secret.SecretName == name {
		return true
	}
	if v.Projected != nil {
		for _, s := range v.Projected.Sources {
			if s.Secret != nil && s.Secret.Name == name {
				return true
			}
		}
	}
	return false
}

// configMapHoldsNoDrawSecret checks that no ConfigMap, whatever its name, has the key
// CREDITRECON_DRAW_SECRET: a ConfigMap is readable by anyone who may read the namespace's
// configuration, and every container reads creditrecon-config whole (envFrom), migrate included.
func (c *checker) configMapHoldsNoDrawSecret(where string, cm *corev1.ConfigMap) {
	_, inData := cm.Data[drawSecretEnv]
	_, inBinary := cm.BinaryData[drawSecretEnv]
	if inData || inBinary {
		c.errorf(where, "%s belongs in Secret %s (key %s), not in a ConfigMap: it is not secret there, and every container that reads the ConfigMap, migrate included, would get it",
			drawSecretEnv, drawSecretName, drawSecretKey)
	}
}
