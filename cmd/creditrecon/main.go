// Command creditrecon pays RunPod's referral and template credits: it reconciles billing usage in
// PostgreSQL as of a cutoff, writes the grants owed exactly once, and exports reports for finance.
// Run `creditrecon help` for the commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	// Map the error before stop: stop cancels ctx, which would make every failure look interrupted.
	code := exitCode(ctx, err, os.Stderr)
	stop()
	os.Exit(code)
}
