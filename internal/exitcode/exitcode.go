// Package exitcode lists the exit codes of the creditrecon binary. Kubernetes manifests (the
// CronJob's podFailurePolicy) and operators' scripts rely on them; k8s tests check against them.
package exitcode

// The exit codes of creditrecon.
const (
	OK          = 0 // success
	Failed      = 1 // the run failed; running it again is safe
	Usage       = 2 // bad usage or configuration: retrying cannot help
	Locked      = 3 // another run holds the advisory lock: try again later
	Interrupted = 4 // stopped by SIGTERM or SIGINT at a safe point; the next run completes the work
)
