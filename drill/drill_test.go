package drill

import (
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/runpod/creditrecon/internal/exitcode"
	"github.com/runpod/creditrecon/internal/pgtest"
)

// world is what every scenario shares: the loaded template database and the clean references.
type world struct {
	tpl         *template
	ref         *reference // one clean `run --as-of cutoff`
	refBackfill *reference // one clean `backfill --from backfillFrom --to backfillTo`
}

// TestDrill loads the synthetic population once, takes the clean references, runs every
// scenario's trials and prints the figures. Any double grant, lost grant, divergence from the
// clean ledger, invariant violation or report mismatch fails it.
func TestDrill(t *testing.T) {
	if testing.Short() {
		t.Skip("the fault-injection drill is slow; it runs without -short")
	}
	began := time.Now()
	cluster = pgtest.Cluster(t)
	w := &world{tpl: newTemplate(t, *flagRows, *flagSeed)}
	w.ref = newReference(t, w.tpl, "run", "--as-of", cutoff)
	w.refBackfill = newReference(t, w.tpl, "backfill", "--from", backfillFrom, "--to", backfillTo)
	setup := time.Since(began)

	tb := &table{}
	scenarios := []struct {
		name string
		run  func(t *testing.T, tl *tally)
	}{
		{"sigkill-run", w.sigkillRun},
		{"sigkill-backfill", w.sigkillBackfill},
		{"sigkill-shard", w.sigkillShard},
		{"concurrent-lock", w.concurrentLock},
		{"concurrent-lock-lost", w.concurrentLockLost},
		{"concurrent-no-lock", w.concurrentNoLock},
		{"db-kill-read", w.dbKillRead},
		{"db-kill-write", w.dbKillWrite},
		{"db-restart", w.dbRestart},
		{"db-statement-timeout", w.dbStatementTimeout},
		{"s3-down", w.s3Down},
		{"s3-slow-flaky", w.s3SlowFlaky},
		{"s3-mid-upload", w.s3MidUpload},
		{"s3-mid-multipart", w.s3MidMultipart},
	}
	for _, sc := range scenarios {
		tl := tb.row(sc.name)
		t.Run(sc.name, func(t *testing.T) { sc.run(t, tl) })
	}
	fmt.Fprintf(os.Stdout, "\ncreditrecon fault-injection drill: seed %d, %d usage rows, clean run %s, clean backfill %s (3 cutoffs), setup %s, total %s\n\n",
		*flagSeed, *flagRows, w.ref.duration.Round(time.Millisecond), w.refBackfill.duration.Round(time.Millisecond),
		setup.Round(time.Second), time.Since(began).Round(time.Second))
	tb.print(os.Stdout)
	if bad := tb.failures(); bad != "" {
		t.Errorf("the drill found %s", bad)
	}
}

// trial is one trial of a scenario: its own copy of the database, its own random choices (a
// function of -drill.seed, the scenario and the trial number, so that one trial replays alone
// with -run) and its scenario's tally.
type trial struct {
	t        *testing.T
	tl       *tally
	rng      *rand.Rand
	tpl      *template
	ref      *reference
	index    int // 0 for the first trial
	dsn      string
	midOver  int // accounts over the reference right after the faults
	midUnder int // accounts under it when every grant must already be there (see complete)
}

// trials runs n trials of a scenario on copies of tpl, checked against ref.
func trials(t *testing.T, tl *tally, n int, tpl *template, ref *reference, fn func(tr *trial)) {
	h := fnv.New64a()
	h.Write([]byte(tl.name))
	for i := range n {
		name := fmt.Sprintf("trial-%03d", i+1)
		ok := t.Run(name, func(t *testing.T) {
			tr := &trial{t: t, tl: tl, tpl: tpl, ref: ref, index: i, rng: rand.New(rand.NewPCG(*flagSeed, h.Sum64()+uint64(i)))}
			tr.dsn = tpl.copy(t)
			tl.add(func() { tl.trials++ })
			fn(tr)
		})
		if !ok {
			t.Logf("replay: go test ./drill -count=1 -v -run 'TestDrill/%s/%s' -args -drill.seed %d -drill.rows %d -drill.trials %d -drill.kills %d",
				tl.name, name, *flagSeed, *flagRows, otherTrials(), kills())
		}
	}
}

// env is the environment of the trial's commands: its database, reports in a directory of the
// trial unless reportsURL is given, and the template's extra variables.
func (tr *trial) env(reportsURL string, extra ...string) []string {
	if reportsURL == "" {
		reportsURL = fileURL(tr.t)
	}
	return dbEnv(tr.dsn, reportsURL, append(append([]string{}, tr.tpl.env...), extra...)...)
}

// clean is how long the clean command takes now: the reference's duration, or the median of the
// scenario's last five plain re-runs when that is longer (the machine is shared, and a duration
// measured once at a quiet moment would crowd every fault into the first part of the runs).
func (tr *trial) clean() time.Duration {
	var recent []time.Duration
	tr.tl.add(func() { recent = slices.Clone(tr.tl.recent) })
	if len(recent) == 0 {
		return tr.ref.duration
	}
	slices.Sort(recent)
	return max(tr.ref.duration, recent[len(recent)/2])
}

// uniform is a duration drawn uniformly from [0, d).
func (tr *trial) uniform(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(tr.rng.Int64N(int64(d)))
}

// settled checks the database right after the faults, before anything repairs it: the
// invariants, and no account granted more than the clean run grants it.
func (tr *trial) settled() {
	tr.t.Helper()
	db := openDB(tr.t, tr.dsn)
	defer db.Close()
	tr.violations(audit(tr.t, db, false), "right after the faults")
	c := compare(readLedger(tr.t, db), tr.ref.ledger)
	tr.midOver = c.over
	if c.over > 0 {
		tr.t.Errorf("right after the faults, %d accounts were granted more than one clean run grants:\n%s", c.over, c.detail)
	}
}

// complete checks that the ledger is already the clean run's, grant for grant: after a fault that
// struck once the grants had committed (S3), no grant may be missing.
func (tr *trial) complete() {
	tr.t.Helper()
	db := openDB(tr.t, tr.dsn)
	defer db.Close()
	c := compare(readLedger(tr.t, db), tr.ref.ledger)
	tr.midUnder = c.under
	if c.differs {
		tr.t.Errorf("right after the fault, the ledger is not the clean run's:\n%s", c.detail)
	}
}

// converge runs args (the plain command) until the lock lets it in, and checks it succeeds.
func (tr *trial) converge(env []string, args ...string) (*proc, int) {
	tr.t.Helper()
	p, locked := runUnlocked(tr.t, env, args...)
	if p.code == exitcode.OK {
		tr.tl.add(func() {
			r := append(tr.tl.recent, p.elapsed)
			tr.tl.recent = r[max(0, len(r)-5):]
		})
	}
	tr.t.Logf("plain re-run: exit %d after %s (locked out %d times): %s", p.code, p.elapsed.Round(time.Millisecond), locked,
		firstLine(p.stdout.String()))
	if p.code != exitcode.OK {
		tr.violations([]string{fmt.Sprintf("the plain re-run failed: exit %d", p.code)}, "")
		tr.t.Errorf("the plain re-run after the faults: %s", p)
	}
	return p, locked
}

// final checks the database once everything has stopped: the invariants, by the drill's audit
// and by `creditrecon verify` (run with env, so that it also ties the manifests in the trial's
// reports location out to the ledger), and the ledger equal to the clean run's, grant for grant.
func (tr *trial) final(env []string) {
	tr.t.Helper()
	db := openDB(tr.t, tr.dsn)
	defer db.Close()
	tr.violations(audit(tr.t, db, true), "at the end")
	if v := run(tr.t, env, "verify"); v.code != exitcode.OK {
		failed := 0
		for _, line := range strings.Split(v.stdout.String(), "\n") {
			if strings.HasPrefix(line, "FAIL ") {
				failed++
			}
		}
		tr.tl.add(func() { tr.tl.invariants += max(failed, 1) })
		tr.t.Errorf("creditrecon verify at the end: %s", v)
	} else {
		lines := strings.Split(strings.TrimSpace(v.stdout.String()), "\n")
		tr.t.Logf("creditrecon verify: %s", lines[len(lines)-1])
	}
	c := compare(readLedger(tr.t, db), tr.ref.ledger)
	tr.tl.add(func() {
		tr.tl.double += max(c.over, tr.midOver)
		tr.tl.lost += max(c.under, tr.midUnder)
		if c.differs {
			tr.tl.diverged++
		}
	})
	if c.differs {
		tr.t.Errorf("the ledger differs from one clean run's:\n%s", c.detail)
	}
}

func (tr *trial) violations(v []string, when string) {
	tr.t.Helper()
	if len(v) == 0 {
		return
	}
	tr.tl.add(func() { tr.tl.invariants += len(v) })
	tr.t.Errorf("invariant violations %s:\n  %s", when, strings.Join(v, "\n  "))
}

// tally adds up one scenario's trials.
type tally struct {
	name                               string
	mu                                 sync.Mutex
	trials                             int
	faults                             int
	exits                              map[string]int
	double, lost, diverged, invariants int
	reports                            int // report files that differ; -1: not compared
	notes                              map[string]int
	recent                             []time.Duration // the last plain re-runs' durations
}

func (tl *tally) add(f func()) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	f()
}

// exit counts a process's exit code under the fault (the plain re-runs are not counted).
func (tl *tally) exit(code int) { tl.exitLabel(exitLabel(code)) }

func (tl *tally) exitLabel(label string) { tl.add(func() { tl.exits[label]++ }) }

func exitLabel(code int) string {
	switch code {
	case codeKilled:
		return "killed"
	case -2:
		return "error"
	}
	return strconv.Itoa(code)
}

func (tl *tally) fault(n int) { tl.add(func() { tl.faults += n }) }

// note counts an outcome worth knowing (where a kill landed, which query was cut off).
func (tl *tally) note(what string) { tl.add(func() { tl.notes[what]++ }) }

// table is the figures of every scenario, printed at the end.
type table struct{ rows []*tally }

func (tb *table) row(name string) *tally {
	tl := &tally{name: name, exits: map[string]int{}, notes: map[string]int{}, reports: -1}
	tb.rows = append(tb.rows, tl)
	return tl
}

func (tb *table) print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\ttrials\tfaults\texits by code\tdouble grants\tlost grants\tdivergences\tinvariant violations\treport mismatches\t")
	var total tally
	for _, r := range tb.rows {
		if r.trials == 0 {
			continue
		}
		reports := "-"
		if r.reports >= 0 {
			reports = strconv.Itoa(r.reports)
			total.reports += r.reports
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\t%d\t%d\t%d\t%s\t\n", r.name, r.trials, r.faults, counts(r.exits, " "),
			r.double, r.lost, r.diverged, r.invariants, reports)
		total.trials += r.trials
		total.faults += r.faults
		total.double += r.double
		total.lost += r.lost
		total.diverged += r.diverged
		total.invariants += r.invariants
	}
	fmt.Fprintf(tw, "total\t%d\t%d\t\t%d\t%d\t%d\t%d\t%d\t\n", total.trials, total.faults, total.double, total.lost,
		total.diverged, total.invariants, total.reports)
	tw.Flush()
	fmt.Fprintln(w, "\noutcomes:")
	for _, r := range tb.rows {
		if r.trials > 0 && len(r.notes) > 0 {
			fmt.Fprintf(w, "  %s: %s\n", r.name, counts(r.notes, "; "))
		}
	}
}

// failures says what the table counts that must be zero, or "".
func (tb *table) failures() string {
	var bad []string
	for _, r := range tb.rows {
		for _, f := range []struct {
			n    int
			what string
		}{{r.double, "double grants"}, {r.lost, "lost grants"}, {r.diverged, "divergences"},
			{r.invariants, "invariant violations"}, {max(r.reports, 0), "report mismatches"}} {
			if f.n > 0 {
				bad = append(bad, fmt.Sprintf("%s: %d %s", r.name, f.n, f.what))
			}
		}
	}
	return strings.Join(bad, ", ")
}

// counts renders a count map as "a:1 b:2", keys sorted.
func counts(m map[string]int, sep string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s:%d", k, m[k]))
	}
	return strings.Join(parts, sep)
}
