package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/runpod/creditrecon/internal/exitcode"
	"github.com/runpod/creditrecon/jobs"
)

// command is a subcommand: its one-line summary and its entry point.
type command struct {
	summary string
	run     func(ctx context.Context, e *env, args []string) error
}

var commands = map[string]command{
	"migrate":  {"create or upgrade the job-owned tables (safe to run every time)", cmdMigrate},
	"run":      {"reconcile as of a cutoff, write the grants owed, export the reports", cmdRun},
	"accept":   {"record a referrer's acceptance into the Referral Program", cmdAccept},
	"enroll":   {"move a referrer to a partner tier from a date (final)", cmdEnroll},
	"generate": {"fill a test database with a synthetic population (benchmarks, demos)", cmdGenerate},
	"explain":  {"show why a user got, or did not get, credits", cmdExplain},
	"runs":     {"list the run ledger, newest first", cmdRuns},
	"backfill": {"one run per daily cutoff from --from to --to, skipping cutoffs already run", cmdBackfill},
	"demo":     {"run the job on a throwaway local PostgreSQL with sample data", cmdDemo},
	"export":   {"write the reports of a cutoff again from the database", cmdExport},
	"reports":  {"list the report files of a cutoff with download links", cmdReports},
	"serve":    {"run the nightly job on a cron schedule (deployments without Kubernetes)", cmdServe},
	"verify":   {"audit the ledger, the grants owed and the report manifests (read only)", cmdVerify},
	"terms":    {"validate a terms file and print its versions (terms check FILE)", cmdTerms},
	"simulate": {"price proposed terms beside the current ones on one snapshot (writes nothing)", cmdSimulate},
}

// env is what a command talks to; tests build one around buffers.
type env struct {
	stdout, stderr io.Writer
	now            func() time.Time
}

// Run runs the command line args (without the program name). Only main prints its error.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	e := &env{stdout: stdout, stderr: stderr, now: time.Now}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		if len(args) == 0 {
			return usageErrorf("no command given")
		}
		return nil
	}
	if args[0] == "version" || args[0] == "--version" {
		fmt.Fprintln(stdout, "creditrecon", version)
		return nil
	}
	c, ok := commands[args[0]]
	if !ok {
		usage(stderr)
		return usageErrorf("unknown command %q", args[0])
	}
	return c.run(ctx, e, args[1:])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: creditrecon COMMAND [flags]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "  %-9s %s\n", name, commands[name].summary)
	}
	fmt.Fprintln(w, "\nRun `creditrecon COMMAND -h` for a command's flags. Exit codes: 0 success, 1 failed,")
	fmt.Fprintln(w, "2 bad usage or configuration, 3 another run holds the lock, 4 interrupted (SIGTERM).")
}

// usageError is bad usage or configuration: exit code 2, and nothing was written.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// exitCode maps an error to the process exit code and prints it: the only place that prints
// errors. Messages say what to do next.
func exitCode(ctx context.Context, err error, stderr io.Writer) int {
	var ue *usageError
	var termsErr *jobs.TermsError
	switch {
	case err == nil:
		return exitcode.OK
	case errors.Is(err, flag.ErrHelp):
		return exitcode.Usage
	case errors.As(err, &ue), errors.As(err, &termsErr), errors.Is(err, jobs.ErrMissingSource):
		fmt.Fprintf(stderr, "creditrecon: %v\n", err)
		return exitcode.Usage
	case errors.Is(err, jobs.ErrLocked):
		fmt.Fprintf(stderr, "creditrecon: %v: another run or backfill is in progress; nothing was done, try again when it ends (see `creditrecon runs`)\n", err)
		return exitcode.Locked
	case ctx.Err() != nil:
		fmt.Fprintf(stderr, "creditrecon: interrupted, stopped at a safe point (nothing half-written; run again to finish): %v\n", err)
		return exitcode.Interrupted
	default:
		fmt.Fprintf(stderr, "creditrecon: %v\n", err)
		return exitcode.Failed
	}
}

// parseArgs parses flags that may come before or after positional arguments
// (`accept alice --by bob` and `accept --by bob alice`) and returns the positional ones.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &usageError{err}
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		if args[0] == "--" {
			return append(positional, args[1:]...), nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// newFlagSet returns a flag set that reports errors instead of exiting, with a usage text that
// shows an example.
func newFlagSet(e *env, name, synopsis, example string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: creditrecon %s\n\nExample:\n  %s\n\nFlags:\n", synopsis, example)
		fs.PrintDefaults()
	}
	return fs
}

// newLogger writes structured logs to stderr: JSON lines (the default, for Kubernetes) or text.
func newLogger(w io.Writer, format string) *slog.Logger {
	if strings.EqualFold(format, "text") {
		return slog.New(slog.NewTextHandler(w, nil))
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}

func lookupEnv(name string) (string, bool) { return os.LookupEnv(name) }
