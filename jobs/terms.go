package jobs

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/runpod/creditrecon/reconcile"
)

// TermsSource says where a run's terms come from: a terms file (its path and the SHA-256 of its
// bytes), or the built-in terms of the program flags when File is empty.
type TermsSource struct {
	File   string
	SHA256 string
	Terms  reconcile.Terms
}

// TermsRecord is what a run records of its terms, in its ledger row and its report manifest.
type TermsRecord struct {
	File       string          `json:"file,omitempty"`
	FileSHA256 string          `json:"file_sha256,omitempty"` // empty: the built-in terms
	Versions   []VersionRef    `json:"versions"`
	Terms      reconcile.Terms `json:"terms"`
}

// VersionRef names a terms version by its program, id and content hash.
type VersionRef struct {
	Program string `json:"program"`
	ID      string `json:"id"`
	SHA256  string `json:"sha256"`
}

// record returns what a run records of terms from source.
func record(src TermsSource, t reconcile.Terms) TermsRecord {
	rec := TermsRecord{File: src.File, FileSHA256: src.SHA256, Terms: t, Versions: []VersionRef{}}
	for _, v := range t.Records() {
		rec.Versions = append(rec.Versions, VersionRef{Program: string(v.Program), ID: v.ID, SHA256: v.SHA256})
	}
	return rec
}

// RecordedVersion is a row of terms_versions: a version's content as a committed run used it.
type RecordedVersion struct {
	Program    string     `db:"program"`
	ID         string     `db:"id"`
	SHA256     string     `db:"sha256"`
	From       *time.Time `db:"valid_from"`
	Content    []byte     `db:"content"`
	FirstRunID int64      `db:"first_run_id"`
}

// TermsError refuses terms that would rewrite the past (SPEC 7.3): a version in use changed or
// dropped, or a retroactive version or rate period without --allow-retroactive. Nothing was
// written.
type TermsError struct {
	Problems []string
}

func (e *TermsError) Error() string {
	return "the terms would rewrite money already granted (terms are append-only): " + strings.Join(e.Problems, "; ") +
		"; restore the versions in use, date new versions and rate periods after the latest cutoff, " +
		"or price a deliberate retroactive change with `creditrecon simulate` and run with --allow-retroactive"
}

// checkAppendOnly compares the terms of a run with the versions recorded in use, given the latest
// successful cutoff (zero: none). It returns whether the terms are retroactive (a new version or
// rate period from before that cutoff, allowed with allowRetroactive) or a *TermsError.
// builtIn terms (no terms file) may change the seed versions (the program flags), but not drop
// versions a terms file put in use. A ledger with nothing recorded accepts any terms.
func checkAppendOnly(recorded []RecordedVersion, latest time.Time, t reconcile.Terms, builtIn, allowRetroactive bool) (bool, error) {
	current := map[string]reconcile.VersionRecord{}
	for _, v := range t.Records() {
		current[string(v.Program)+"/"+v.ID] = v
	}
	var problems []string
	retroactive := false
	known := map[string]bool{}
	for _, old := range recorded {
		name := old.Program + "/" + old.ID
		known[name] = true
		cur, ok := current[name]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("version %s is in use (since run %d) and missing from the terms", name, old.FirstRunID))
		case cur.SHA256 == old.SHA256 || (builtIn && old.ID == reconcile.SeedTermsID):
		default:
			keys, appended, err := versionDiff(old.Content, cur.Content, latest)
			if err != nil {
				return false, fmt.Errorf("compare terms version %s: %w", name, err)
			}
			switch {
			case len(keys) > 0:
				problems = append(problems, fmt.Sprintf("version %s is in use (since run %d) and its %s changed", name, old.FirstRunID, strings.Join(keys, ", ")))
			case appended:
				retroactive = true
				if !allowRetroactive {
					problems = append(problems, fmt.Sprintf("version %s gains a rate period from before the latest cutoff %s", name, latest.Format(time.RFC3339)))
				}
			}
		}
	}
	// A ledger with no terms recorded (runs from before terms existed) takes the terms of its
	// first run: they record what is in use from then on.
	// A partner tier binds nothing by date: only enrollments route usage to it, so a new tier
	// re-prices nothing by itself.
	tiers := map[string]bool{}
	for _, v := range t.Referral {
		tiers[string(reconcile.Referral)+"/"+v.ID] = v.Tier
	}
	if !latest.IsZero() && len(recorded) > 0 {
		for _, v := range t.Records() {
			name := string(v.Program) + "/" + v.ID
			if known[name] || tiers[name] || v.From.After(latest) || v.From.Equal(latest) && !v.From.IsZero() {
				continue
			}
			retroactive = true
			if !allowRetroactive {
				from := "since forever"
				if !v.From.IsZero() {
					from = "from " + v.From.Format(time.RFC3339)
				}
				problems = append(problems, fmt.Sprintf("new version %s starts %s, before the latest cutoff %s", name, from, latest.Format(time.RFC3339)))
			}
		}
	}
	if len(problems) > 0 {
		return retroactive, &TermsError{Problems: problems}
	}
	return retroactive, nil
}

// versionDiff compares a version's recorded content with its current one, both without the rate
// periods that start at or after latest (appending those is how a rate changes for everyone). It
// returns the keys that differ and, when only rate periods were appended (from before latest),
// appended.
func versionDiff(old, cur []byte, latest time.Time) (keys []string, appended bool, err error) {
	var a, b map[string]any
	if err := json.Unmarshal(old, &a); err != nil {
		return nil, false, err
	}
	if err := json.Unmarshal(cur, &b); err != nil {
		return nil, false, err
	}
	ra, rb := futurePeriodsOff(a["rates"], latest), futurePeriodsOff(b["rates"], latest)
	delete(a, "rates")
	delete(b, "rates")
	for k := range a {
		if !reflect.DeepEqual(a[k], b[k]) {
			keys = append(keys, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	if !reflect.DeepEqual(ra, rb) {
		if len(rb) > len(ra) && reflect.DeepEqual(ra, rb[:len(ra)]) {
			appended = true
		} else {
			keys = append(keys, "rates")
		}
	}
	slices.Sort(keys)
	return keys, appended, nil
}

// futurePeriodsOff drops the rate periods that start at or after latest.
func futurePeriodsOff(rates any, latest time.Time) []any {
	list, _ := rates.([]any)
	var out []any
	for _, p := range list {
		m, _ := p.(map[string]any)
		if from, ok := m["from"].(string); ok && !latest.IsZero() {
			if t, err := time.Parse(time.RFC3339Nano, from); err == nil && !t.Before(latest) {
				continue
			}
		}
		out = append(out, p)
	}
	return out
}

// termsOfRun returns the terms a recorded run used: its terms column or, for a run from before
// terms existed, the built-in terms of its parameters (decoded over defaults).
func termsOfRun(defaults reconcile.Params, parameters, terms []byte) (reconcile.Terms, []byte, error) {
	if len(terms) > 0 {
		var rec TermsRecord
		if err := json.Unmarshal(terms, &rec); err != nil {
			return reconcile.Terms{}, nil, fmt.Errorf("decode terms: %w", err)
		}
		// Re-encode: jsonb reorders keys, and manifests must not depend on where they came from.
		canonical, err := json.Marshal(rec)
		return rec.Terms, canonical, err
	}
	p := defaults
	if err := json.Unmarshal(parameters, &p); err != nil {
		return reconcile.Terms{}, nil, fmt.Errorf("decode parameters: %w", err)
	}
	canonical, err := json.Marshal(record(TermsSource{}, p.Terms()))
	return p.Terms(), canonical, err
}
