package drill

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/runpod/creditrecon/internal/pgtemp"
)

var (
	flagTrials = flag.Int("drill.trials", 0, "trials per scenario (default 3, or 10 with -drill.long)")
	flagKills  = flag.Int("drill.kills", 0, "SIGKILL trials of `creditrecon run` (default -drill.trials, or 100 with -drill.long); "+
		"the backfill is killed a quarter as often, at least -drill.trials times")
	flagLong  = flag.Bool("drill.long", false, "the long form: 100 SIGKILL trials of run, 25 of backfill, 10 trials of every other scenario")
	flagSeed  = flag.Uint64("drill.seed", 1, "seed of the synthetic data and of every trial's random choices")
	flagRows  = flag.Int("drill.rows", 300_000, "usage rows of the synthetic population (sets how long a run takes)")
	flagTerms = flag.String("drill.terms", "testdata/terms.yaml", "the terms file every command runs with (several versions per "+
		"program); empty: the built-in terms")
)

// drawSecret keys the signup bonus draws of every command the drill runs.
const drawSecret = "drill-draw-secret-of-at-least-32-bytes"

// trials is the number of trials of the scenarios other than SIGKILL.
func otherTrials() int {
	switch {
	case *flagTrials > 0:
		return *flagTrials
	case *flagLong:
		return 10
	}
	return 3
}

// kills is the number of SIGKILL trials of `creditrecon run`.
func kills() int {
	switch {
	case *flagKills > 0:
		return *flagKills
	case *flagLong:
		return 100
	}
	return otherTrials()
}

// backfillKills is the number of SIGKILL trials of `creditrecon backfill`: a backfill runs three
// cutoffs, so a trial costs about three run trials.
func backfillKills() int { return max(otherTrials(), kills()/4) }

// binary is the creditrecon program built by TestMain; every trial runs it as a subprocess.
var binary string

// cluster is the throwaway PostgreSQL server of the tests (nil with TEST_DATABASE_URL), stopped
// by TestMain as pgtest.Main would.
var cluster *pgtemp.Cluster

// TestMain builds the binary once, runs the tests, then stops the throwaway server and removes
// the binary. It does what pgtest.Main does (which exits before a caller could clean up).
func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "creditrecon-drill-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "drill: %v\n", err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "creditrecon")
	build := exec.Command("go", "build", "-o", binary, "./cmd/creditrecon")
	build.Dir = ".." // the module root
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "drill: go build ./cmd/creditrecon: %v\n", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	if cluster != nil {
		cluster.Stop()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}
