package terms

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that Parse never panics, that every problem it reports is an *Error naming
// the file, and that whatever it accepts survives Marshal: Parse(Marshal(t)) equals t.
func FuzzParse(f *testing.F) {
	seeds, err := filepath.Glob("*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	corpus, err := filepath.Glob("testdata/*/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, path := range append(seeds, corpus...) {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := Parse("fuzz.yaml", data)
		if err != nil {
			joined, ok := err.(interface{ Unwrap() []error })
			if !ok {
				t.Fatalf("error %v: not joined problems", err)
			}
			for _, e := range joined.Unwrap() {
				var pe *Error
				if !errors.As(e, &pe) || pe.File != "fuzz.yaml" {
					t.Fatalf("problem %v: want an *Error naming fuzz.yaml", e)
				}
			}
			return
		}
		out := Marshal(got)
		back, err := Parse("marshal.yaml", out)
		if err != nil {
			t.Fatalf("Parse(Marshal(t)): %v\ninput:\n%s\nmarshalled:\n%s", err, data, out)
		}
		if !back.Equal(got) || back.HoldingDays != got.HoldingDays || !back.MinGrant.Equal(got.MinGrant) {
			t.Fatalf("Parse(Marshal(t)) != t\ninput:\n%s\nmarshalled:\n%s\nagain:\n%s", data, out, Marshal(back))
		}
	})
}
