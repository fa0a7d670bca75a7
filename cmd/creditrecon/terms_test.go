package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runpod/creditrecon/internal/exitcode"
	"github.com/runpod/creditrecon/terms"
)

// TestTermsCheck drives `creditrecon terms check` through Run and exitCode, as main does, on the
// shipped terms files and on broken ones. It needs no database.
func TestTermsCheck(t *testing.T) {
	dir := filepath.Join("..", "..", "terms")
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout []string // each must appear
		wantStderr []string // each must appear
	}{
		{
			name:     "seed",
			args:     []string{"terms", "check", filepath.Join(dir, "seed.yaml")},
			wantCode: exitcode.OK,
			wantStdout: []string{
				"holding_days 0, min_grant_usd 0.01\n",
				"PROGRAM ", " SHA256 ", " SUMMARY\n",
				"referral             seed  -     true     ",
				"2% of every product; lifetime window; from 25 referrals and 500.00 USD of referral spend, after acceptance\n",
				"1% of pod, serverless; from 86400 runtime seconds\n",
				"500.00 + 500.00 USD once serverless spend reaches 1000.00 USD; lifetime window\n",
			},
		},
		{
			name:     "RunPod 2025",
			args:     []string{"terms", "check", filepath.Join(dir, "runpod-2025.yaml")},
			wantCode: exitcode.OK,
			wantStdout: []string{
				"referral             runpod-2025-06  2025-06-16  true",
				"pod 3%, serverless 5%, other products nothing; 6mo window; from 0 referrals and 0.00 USD of referral spend, no acceptance needed; new accounts only",
				"serverless_referral  ended-2025-06   2025-06-16  false",
				"disabled: earns nothing\n",
				// SPEC 8: the affiliate tier binds by enrollment, not by date, and pays cash.
				"referral             affiliate-2025  enrollment  true",
				"partner tier (by enrollment): pod 10%, serverless 10%, other products nothing; 6mo window; paid in cash\n",
				"signup_bonus         runpod-2025-06  2025-06-16  true",
				"5.00 USD in 32 fixed countries, elsewhere a draw of 5.00 (85%), 10.00 (11%), 25.00 (2.5%), 50.00 (1%), 100.00 (0.4%), 500.00 (0.1%)",
			},
		},
		{
			name:       "flags after the file",
			args:       []string{"terms", "check", filepath.Join(dir, "seed.yaml"), "--help"},
			wantCode:   exitcode.Usage,
			wantStderr: []string{"Usage: creditrecon terms check FILE"},
		},
		{
			name:     "broken",
			args:     []string{"terms", "check", filepath.Join(dir, "testdata", "broken", "window-words.yaml")},
			wantCode: exitcode.Usage,
			wantStderr: []string{
				"fix the file and check it again",
				`window-words.yaml:7:15: programs.referral[0].window: "6 months" is not a window (lifetime, Nmo or Nd)`,
			},
		},
		{
			name:       "missing file",
			args:       []string{"terms", "check", filepath.Join(t.TempDir(), "nope.yaml")},
			wantCode:   exitcode.Usage,
			wantStderr: []string{"nope.yaml", "no such file"},
		},
		{
			name:       "no file",
			args:       []string{"terms", "check"},
			wantCode:   exitcode.Usage,
			wantStderr: []string{"terms check: give exactly one FILE"},
		},
		{
			name:       "no subcommand",
			args:       []string{"terms"},
			wantCode:   exitcode.Usage,
			wantStderr: []string{"terms check FILE"},
		},
		{
			name:       "unknown subcommand",
			args:       []string{"terms", "lint", filepath.Join(dir, "seed.yaml")},
			wantCode:   exitcode.Usage,
			wantStderr: []string{"terms check FILE"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			var stdout, stderr bytes.Buffer
			err := Run(ctx, tt.args, &stdout, &stderr)
			if code := exitCode(ctx, err, &stderr); code != tt.wantCode {
				t.Fatalf("creditrecon %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s",
					strings.Join(tt.args, " "), code, tt.wantCode, &stdout, &stderr)
			}
			for _, want := range tt.wantStdout {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("stdout does not contain %q:\n%s", want, &stdout)
				}
			}
			for _, want := range tt.wantStderr {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr does not contain %q:\n%s", want, &stderr)
				}
			}
		})
	}
}

// TestTermsCheckErrors checks that a broken file is a usage error that keeps the parser's
// problems, and that the table shows each version's hash.
func TestTermsCheckErrors(t *testing.T) {
	ctx := context.Background()
	var stdout, stderr bytes.Buffer
	err := Run(ctx, []string{"terms", "check", filepath.Join("..", "..", "terms", "testdata", "broken", "duplicate-id.yaml")}, &stdout, &stderr)
	var ue *usageError
	if !errors.As(err, &ue) {
		t.Fatalf("error %v: want a usage error", err)
	}
	var pe *terms.Error
	if !errors.As(err, &pe) || pe.Path != "programs.template[1].id" || pe.Line != 8 {
		t.Errorf("errors.As(err, *terms.Error): got %+v, want the duplicate id at line 8", pe)
	}
	if stdout.Len() != 0 || stderr.Len() != 0 {
		t.Errorf("printed before main: stdout %q, stderr %q; only main prints errors", &stdout, &stderr)
	}

	path := filepath.Join("..", "..", "terms", "runpod-2025.yaml")
	want, err := terms.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	if err := Run(ctx, []string{"terms", "check", path}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	for _, r := range want.Records() {
		if !strings.Contains(stdout.String(), " "+r.ID+" ") || !strings.Contains(stdout.String(), r.SHA256[:12]) {
			t.Errorf("the table lacks %s/%s with SHA-256 %s:\n%s", r.Program, r.ID, r.SHA256[:12], &stdout)
		}
	}
}
