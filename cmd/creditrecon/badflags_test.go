package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runpod/creditrecon/internal/exitcode"
	"github.com/runpod/creditrecon/internal/pgtest"
)

// clearSettingsEnv unsets, for the test, every variable that configures creditrecon, so that
// only what a case sets counts.
func clearSettingsEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "CREDITRECON_") || strings.HasPrefix(name, "S3_") || name == "PUSHGATEWAY_URL" {
			t.Setenv(name, "") // an empty variable is ignored, as if unset
		}
	}
}

// TestBadFlagsAndSettings drives Run and exitCode, as main does, with malformed flags, dates,
// cron expressions, URLs and environment values against a migrated database holding usage that
// a run would pay. Each must exit 2 (usage), name the setting on stderr, and write nothing: no
// run, grant or acceptance in the database and no report file.
func TestBadFlagsAndSettings(t *testing.T) {
	db, dsn := pgtest.Open(t)
	mustRunInProc(t, "migrate", "--database-url", dsn)
	// A run as of 2026-02-01 would grant the template's creator $1.00.
	for _, q := range []string{
		`INSERT INTO users VALUES ('maker', '2026-01-01'), ('a', '2026-01-01')`,
		`INSERT INTO templates VALUES ('tpl', 'maker', '2026-01-01')`,
		`INSERT INTO usage_events (id, user_id, product, template_id, amount_usd, runtime_seconds, occurred_at)
			VALUES (1, 'a', 'pod', 'tpl', 100, 86400, '2026-01-05')`,
	} {
		pgtest.Exec(t, db, q)
	}
	reportsDir := t.TempDir()
	const asOf = "2026-02-01"

	tests := []struct {
		name    string
		env     map[string]string // besides DATABASE_URL and REPORTS_URL, which point at the test's
		args    []string
		names   []string // stderr must contain each
		secrets []string // stderr must not contain any
	}{
		// Flags.
		{name: "unknown flag", args: []string{"run", "--as-of", asOf, "--bogus"}, names: []string{"-bogus"}},
		{name: "shard index out of range", args: []string{"run", "--as-of", asOf, "--shard", "4/4"}, names: []string{"shard:", "4/4"}},
		{name: "shard not I/N", args: []string{"run", "--as-of", asOf, "--shard", "$(JOB_COMPLETION_INDEX)/4"}, names: []string{"shard:", "JOB_COMPLETION_INDEX"}},
		{name: "shard empty", args: []string{"run", "--as-of", asOf, "--shard", ""}, names: []string{"shard:"}},
		{name: "bool flag not a bool", args: []string{"run", "--dry-run=maybe"}, names: []string{"-dry-run"}},
		{name: "int flag a fraction", args: []string{"run", "--referral-min-referrals", "1.5"}, names: []string{"referral-min-referrals", "1.5"}},
		{name: "decimal flag not a number", args: []string{"run", "--max-event-amount", "lots"}, names: []string{"max-event-amount", "lots"}},
		{name: "money flag sub-cent", args: []string{"run", "--as-of", asOf, "--referral-min-spend", "10.005"}, names: []string{"referral-min-spend:", "whole cents"}},
		{name: "negative runtime", args: []string{"run", "--as-of", asOf, "--template-min-runtime-seconds", "-1"}, names: []string{"template-min-runtime-seconds:"}},
		{name: "anomaly share NaN", args: []string{"run", "--as-of", asOf, "--max-anomaly-share", "NaN"}, names: []string{"max-anomaly-share:"}},
		{name: "negative clock skew", args: []string{"run", "--as-of", asOf, "--clock-skew", "-1m"}, names: []string{"clock-skew:"}},
		{name: "zero max event amount", args: []string{"run", "--as-of", asOf, "--max-event-amount", "0"}, names: []string{"max-event-amount:"}},
		{name: "unknown log format", args: []string{"run", "--as-of", asOf, "--log-format", "xml"}, names: []string{"log-format:", "xml"}},
		{name: "pushgateway not http", args: []string{"run", "--as-of", asOf, "--pushgateway-url", "ftp://gw"}, names: []string{"pushgateway-url:"}},
		{name: "flag without its value", args: []string{"run", "--as-of"}, names: []string{"-as-of"}},
		{name: "stray argument", args: []string{"run", "--as-of", asOf, "tomorrow"}, names: []string{"unexpected argument", "tomorrow"}},
		{name: "no programs", args: []string{"run", "--as-of", asOf, "--programs", ","}, names: []string{"programs:"}},
		// Dates.
		{name: "February 30", args: []string{"run", "--as-of", "2026-02-30"}, names: []string{"as-of:", "2026-02-30"}},
		{name: "month 13", args: []string{"run", "--as-of", "2026-13-01"}, names: []string{"as-of:", "2026-13-01"}},
		{name: "yesterday", args: []string{"run", "--as-of", "yesterday"}, names: []string{"as-of:", "yesterday"}},
		{name: "empty as-of", args: []string{"run", "--as-of", ""}, names: []string{"as-of:"}},
		{name: "blank as-of", args: []string{"run", "--as-of", "  "}, names: []string{"as-of:"}},
		{name: "hour 25", args: []string{"run", "--as-of", "2026-02-01T25:00"}, names: []string{"as-of:"}},
		{name: "cutoff in the future", args: []string{"run", "--as-of", "2999-01-01"}, names: []string{"as-of:", "future"}},
		{name: "backfill from February 30", args: []string{"backfill", "--from", "2026-02-30", "--to", "2026-03-01"}, names: []string{"from:", "2026-02-30"}},
		{name: "backfill empty from", args: []string{"backfill", "--from", "", "--to", "2026-01-02"}, names: []string{"from:"}},
		{name: "backfill without to", args: []string{"backfill", "--from", "2026-01-01"}, names: []string{"to:"}},
		{name: "backfill to before from", args: []string{"backfill", "--from", "2026-01-05", "--to", "2026-01-01"}, names: []string{"to:"}},
		{name: "backfill a TIME", args: []string{"backfill", "--from", "2026-01-01T00:00:00Z", "--to", "2026-01-02"}, names: []string{"from:"}},
		{name: "export yesterday", args: []string{"export", "--as-of", "yesterday"}, names: []string{"as-of:", "yesterday"}},
		{name: "export without as-of", args: []string{"export"}, names: []string{"as-of:"}},
		{name: "explain month 13", args: []string{"explain", "maker", "--as-of", "2026-13-01"}, names: []string{"as-of:"}},
		{name: "program start February 30", args: []string{"run", "--as-of", asOf, "--referral-start", "2026-02-30"}, names: []string{"referral-start", "2026-02-30"}},
		{name: "program start env not a date", env: map[string]string{"CREDITRECON_TEMPLATE_START": "01/02/2026"}, args: []string{"run", "--as-of", asOf},
			names: []string{"CREDITRECON_TEMPLATE_START", "01/02/2026"}},
		// Cron expressions (serve validates before it opens anything).
		{name: "minute 61", args: []string{"serve", "--schedule", "61 * * * *"}, names: []string{"schedule:", "61 * * * *"}},
		{name: "@fortnightly", args: []string{"serve", "--schedule", "@fortnightly"}, names: []string{"schedule:", "@fortnightly"}},
		{name: "empty schedule", args: []string{"serve", "--schedule", ""}, names: []string{"schedule:"}},
		{name: "six fields", args: []string{"serve", "--schedule", "0 30 0 * * *"}, names: []string{"schedule:"}},
		{name: "schedule env three fields", env: map[string]string{"CREDITRECON_SCHEDULE": "* * *"}, args: []string{"serve"}, names: []string{"schedule:"}},
		// URLs.
		{name: "reports ftp", env: map[string]string{"REPORTS_URL": "ftp://x"}, args: []string{"run", "--as-of", asOf}, names: []string{"REPORTS_URL", "ftp"}},
		{name: "reports s3 without bucket", env: map[string]string{"REPORTS_URL": "s3://"}, args: []string{"run", "--as-of", asOf}, names: []string{"REPORTS_URL", "no bucket"}},
		{name: "reports s3 prefix escapes", env: map[string]string{"REPORTS_URL": "s3://bucket/../up"}, args: []string{"run", "--as-of", asOf}, names: []string{"REPORTS_URL", "prefix"}},
		{name: "reports file with a host", env: map[string]string{"REPORTS_URL": "file://host/path"}, args: []string{"run", "--as-of", asOf}, names: []string{"REPORTS_URL", "host"}},
		{name: "reports file without a path", env: map[string]string{"REPORTS_URL": "file://"}, args: []string{"export", "--as-of", asOf}, names: []string{"REPORTS_URL"}},
		{name: "reports flag with a query", args: []string{"run", "--as-of", asOf, "--reports-url", "file:///tmp/r?x=1"}, names: []string{"REPORTS_URL"}},
		{name: "reports s3 without region", env: map[string]string{"REPORTS_URL": "s3://bucket/p", "AWS_REGION": "", "AWS_DEFAULT_REGION": "",
			"AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}, args: []string{"run", "--as-of", asOf}, names: []string{"REPORTS_URL", "AWS_REGION"}},
		{name: "database mysql", env: map[string]string{"DATABASE_URL": "mysql://u:hunter2pw@db/credits"}, args: []string{"run", "--as-of", asOf},
			names: []string{"database-url:", "postgres://"}, secrets: []string{"hunter2pw"}},
		{name: "database password with a space", env: map[string]string{"DATABASE_URL": "postgres://u:hunter2 pw@127.0.0.1/db"}, args: []string{"run", "--as-of", asOf},
			names: []string{"database-url:", "white space"}, secrets: []string{"hunter2"}},
		{name: "database keywords after the URL", env: map[string]string{"DATABASE_URL": dsn + " sslmode=disable"}, args: []string{"migrate"},
			names: []string{"database-url:", "white space"}},
		{name: "database trailing newline", env: map[string]string{"DATABASE_URL": dsn + "\n"}, args: []string{"accept", "a", "--by", "ops"},
			names: []string{"database-url:"}},
		{name: "database leading space", env: map[string]string{"DATABASE_URL": " " + dsn}, args: []string{"runs"}, names: []string{"database-url:"}},
		{name: "database bad escape", env: map[string]string{"DATABASE_URL": "postgres://u:hunter2%zz@127.0.0.1/db"}, args: []string{"run", "--as-of", asOf},
			names: []string{"database-url:", "not a valid URL"}, secrets: []string{"hunter2"}},
		{name: "database bad sslmode", env: map[string]string{"DATABASE_URL": "postgres://u:hunter2pw@127.0.0.1/db?sslmode=verify-fulll"}, args: []string{"run", "--as-of", asOf},
			names: []string{"database-url:", "sslmode"}, secrets: []string{"hunter2pw"}},
		{name: "database unset", env: map[string]string{"DATABASE_URL": ""}, args: []string{"run", "--as-of", asOf}, names: []string{"database-url:", "DATABASE_URL"}},
		// Environment values.
		{name: "rate abc", env: map[string]string{"CREDITRECON_REFERRAL_RATE": "abc"}, args: []string{"run", "--as-of", asOf}, names: []string{"CREDITRECON_REFERRAL_RATE", "abc"}},
		{name: "rate 1.5", env: map[string]string{"CREDITRECON_TEMPLATE_RATE": "1.5"}, args: []string{"run", "--as-of", asOf}, names: []string{"template-rate:"}},
		{name: "anomaly share -1", env: map[string]string{"CREDITRECON_MAX_ANOMALY_SHARE": "-1"}, args: []string{"run", "--as-of", asOf}, names: []string{"max-anomaly-share:"}},
		{name: "clock skew without unit", env: map[string]string{"CREDITRECON_CLOCK_SKEW": "10"}, args: []string{"run", "--as-of", asOf}, names: []string{"CREDITRECON_CLOCK_SKEW", `"10"`}},
		{name: "unknown program", env: map[string]string{"CREDITRECON_PROGRAMS": "referral,bogus"}, args: []string{"run", "--as-of", asOf}, names: []string{"CREDITRECON_PROGRAMS", "bogus"}},
		{name: "zone on Mars", env: map[string]string{"CREDITRECON_TIMEZONE": "Mars/Olympus"}, args: []string{"run", "--as-of", asOf}, names: []string{"timezone:", "Mars/Olympus"}},
		{name: "zone path", env: map[string]string{"CREDITRECON_TIMEZONE": "../../../etc/passwd"}, args: []string{"backfill", "--from", asOf, "--to", asOf}, names: []string{"timezone:"}},
		{name: "min referrals 25.0", env: map[string]string{"CREDITRECON_REFERRAL_MIN_REFERRALS": "25.0"}, args: []string{"run", "--as-of", asOf}, names: []string{"CREDITRECON_REFERRAL_MIN_REFERRALS"}},
		{name: "bonus env negative", env: map[string]string{"CREDITRECON_SERVERLESS_REFERRER_BONUS": "-500"}, args: []string{"run", "--as-of", asOf}, names: []string{"serverless-referrer-bonus:"}},
		{name: "path style yes", env: map[string]string{"S3_FORCE_PATH_STYLE": "yes"}, args: []string{"run", "--as-of", asOf}, names: []string{"S3_FORCE_PATH_STYLE", "yes"}},
		{name: "log format env", env: map[string]string{"CREDITRECON_LOG_FORMAT": "yaml"}, args: []string{"runs"}, names: []string{"log-format:", "yaml"}},
		{name: "bad env beside a good flag", env: map[string]string{"CREDITRECON_REFERRAL_RATE": "abc"}, args: []string{"run", "--as-of", asOf, "--referral-rate", "0.03"},
			names: []string{"CREDITRECON_REFERRAL_RATE"}},
		{name: "every bad setting at once", env: map[string]string{"CREDITRECON_CLOCK_SKEW": "10", "CREDITRECON_PROGRAMS": "bogus"}, args: []string{"run", "--as-of", asOf},
			names: []string{"CREDITRECON_CLOCK_SKEW", "CREDITRECON_PROGRAMS"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearSettingsEnv(t)
			t.Setenv("DATABASE_URL", dsn)
			t.Setenv("REPORTS_URL", "file://"+reportsDir)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			// serve blocks until cancelled if it wrongly accepts its settings: bound it.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var stdout, stderr bytes.Buffer
			err := Run(ctx, tt.args, &stdout, &stderr)
			code := exitCode(ctx, err, &stderr)
			if code != exitcode.Usage {
				t.Errorf("creditrecon %q: exit %d, want %d (usage)\nstderr:\n%s", tt.args, code, exitcode.Usage, stderr.String())
			}
			for _, want := range tt.names {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr does not name %q:\n%s", want, stderr.String())
				}
			}
			for _, secret := range tt.secrets {
				if strings.Contains(stderr.String()+stdout.String(), secret) {
					t.Errorf("output shows the secret %q:\n%s%s", secret, stdout.String(), stderr.String())
				}
			}
			if got := written(t, db); got != [3]int{} {
				t.Errorf("rows written (runs, grants, acceptances): got %v, want none", got)
			}
			if files, _ := filepath.Glob(filepath.Join(reportsDir, "*")); len(files) > 0 {
				t.Errorf("report files written: %v", files)
			}
		})
	}

	// The same database and settings, valid, do write: the checks above could fail.
	t.Run("control: a valid run writes", func(t *testing.T) {
		clearSettingsEnv(t)
		t.Setenv("DATABASE_URL", dsn)
		t.Setenv("REPORTS_URL", "file://"+reportsDir)
		mustRunInProc(t, "run", "--as-of", asOf)
		if got := written(t, db); got[0] != 1 || got[1] != 1 {
			t.Errorf("rows written (runs, grants, acceptances): got %v, want 1 run and 1 grant", got)
		}
		if files, _ := filepath.Glob(filepath.Join(reportsDir, "dt=*", "*.csv")); len(files) == 0 {
			t.Error("no report written")
		}
	})
}
