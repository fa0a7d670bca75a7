// Package k8s holds the Kubernetes manifests of creditrecon and the test that keeps them
// deployable. It has no Go code to import: the manifests are kustomize directories.
//
//   - base/: the ServiceAccount (IRSA), the ConfigMap, the nightly CronJob (`creditrecon run`,
//     incremental) and the weekly full CronJob (`creditrecon run --full` on Sundays, after the
//     nightly run's window), with placeholders for the image, the IAM role and the reports
//     bucket.
//   - backfill/: the Job template for an operator's backfill over a date range.
//   - overlays/staging and overlays/production: what is applied, with `kubectl apply -k`; each
//     has an environment/ component (namespace, image) that its backfill/ kustomization shares,
//     so a backfill runs the nightly run's image in its namespace.
//   - components/sharded-nightly, and overlays/staging-sharded and overlays/production-sharded
//     that add it to their environment's overlay: the nightly run as an Indexed Job of N pods,
//     pod I running `creditrecon run --shard I/N`, retried per index.
//   - components/monitoring, which overlays/production includes: the alerts (a PrometheusRule
//     for the prometheus-operator), a Grafana dashboard (a ConfigMap for the Grafana sidecar)
//     and PUSHGATEWAY_URL, so that the runs push the metrics they read.
//   - ../terms (terms/kustomization.yaml), a component base includes: the ConfigMap
//     creditrecon-terms, generated from terms/runpod-2025.yaml under a fixed name, which every
//     container that plans mounts read-only and names in CREDITRECON_TERMS; the backfill Jobs
//     mount the one their environment's overlay applied.
//
// The test renders every kustomization with `kubectl kustomize`, decodes each object strictly
// into its k8s.io/api type, as the API server does, and checks what the API server and the
// binary would reject or misread: the cron schedule and time zone, that no two CronJobs can run
// at once, name lengths, the pod failure policy and the exit codes it names, the security
// context, resources, args (--shard only as `run --shard $(JOB_COMPLETION_INDEX)/N` in an Indexed
// Job of N pods), and which Secret each container's DATABASE_URL comes from (the owner's login
// for migrate, the job's for the run), and how each command that plans reaches the terms file
// (CREDITRECON_TERMS on a read-only mount of ConfigMap creditrecon-terms, which must parse and
// be terms/runpod-2025.yaml, with no program flag or variable beside it). For the monitoring
// component (monitoring_test.go) it checks that every metric the alerts and the dashboard read is
// one internal/metrics pushes, and runs `promtool check rules` and the alerts' unit tests.
// README.md says how to deploy and operate it.
package k8s
