package main

import (
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/lib/pq"
)

// fuzzZones are zones with the awkward cases: offsets in seconds (LMT), half and quarter hours,
// DST at midnight, half-hour DST.
var fuzzZones = []string{"UTC", "America/New_York", "Europe/Amsterdam", "Asia/Kolkata", "Pacific/Chatham",
	"America/Santiago", "Australia/Lord_Howe"}

// FuzzParseCutoff: parseCutoff never panics; an accepted input names one instant, which
// re-formatted as RFC 3339 parses back to the same instant, and a DATE is stable when written
// back as a DATE; a rejected input is named in the error.
func FuzzParseCutoff(f *testing.F) {
	for _, s := range []string{"2026-02-01", " 2026-02-01 ", "2026-02-30", "2026-13-01", "yesterday", "", "2026-02-01T06:00:00Z",
		"2026-02-01T06:00:00.123456789+05:30", "2026-02-01T06:00", "2026-02-01 06:00:07", "2026-03-08T02:30", "1800-01-01",
		"0000-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59", "2026-02-01T25:00", "2026-02-01T06:00:00z", "+2026-02-01"} {
		f.Add(s, uint8(0))
		f.Add(s, uint8(2))
	}
	f.Fuzz(func(t *testing.T, s string, zone uint8) {
		loc, err := time.LoadLocation(fuzzZones[int(zone)%len(fuzzZones)])
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseCutoff(s, loc)
		if err != nil {
			if !strings.Contains(err.Error(), "DATE") {
				t.Errorf("parseCutoff(%q): error %q does not say what a DATE or TIME is", s, err)
			}
			return
		}
		// RFC 3339 keeps offsets to the minute; a zone offset in seconds (LMT) is written in UTC.
		back := got
		if _, offset := got.Zone(); offset%60 != 0 {
			back = got.UTC()
		}
		if y := back.Year(); y < 0 || y > 9999 {
			return // RFC 3339 has four-digit years only
		}
		formatted := back.Format(time.RFC3339Nano)
		again, err := parseCutoff(formatted, loc)
		if err != nil || !again.Equal(got) {
			t.Errorf("parseCutoff(%q) = %s; its RFC 3339 form %q parses to %s, %v; want the same instant", s, got, formatted, again, err)
		}
		if len(strings.TrimSpace(s)) == len(time.DateOnly) {
			date := got.In(loc).Format(time.DateOnly)
			if again, err := parseCutoff(date, loc); err != nil || !again.Equal(got) {
				t.Errorf("parseCutoff(%q) = %s; as a DATE %q it parses to %s, %v; want the same instant", s, got, date, again, err)
			}
		}
	})
}

// envSettings are the run commands' environment variables and the flags they default.
var envSettings = []struct{ env, flag string }{
	{"CREDITRECON_REFERRAL_RATE", "referral-rate"},
	{"CREDITRECON_REFERRAL_MIN_REFERRALS", "referral-min-referrals"},
	{"CREDITRECON_REFERRAL_MIN_SPEND", "referral-min-spend"},
	{"CREDITRECON_TEMPLATE_RATE", "template-rate"},
	{"CREDITRECON_TEMPLATE_MIN_RUNTIME_SECONDS", "template-min-runtime-seconds"},
	{"CREDITRECON_SERVERLESS_THRESHOLD", "serverless-threshold"},
	{"CREDITRECON_SERVERLESS_REFERRER_BONUS", "serverless-referrer-bonus"},
	{"CREDITRECON_SERVERLESS_REFERRED_BONUS", "serverless-referred-bonus"},
	{"CREDITRECON_MAX_ANOMALY_SHARE", "max-anomaly-share"},
	{"CREDITRECON_CLOCK_SKEW", "clock-skew"},
	{"CREDITRECON_MAX_EVENT_AMOUNT", "max-event-amount"},
	{"CREDITRECON_PROGRAMS", "programs"},
	{"CREDITRECON_REFERRAL_START", "referral-start"},
	{"CREDITRECON_TEMPLATE_START", "template-start"},
	{"CREDITRECON_SERVERLESS_START", "serverless-start"},
	{"CREDITRECON_TIMEZONE", "timezone"},
	{"CREDITRECON_LOG_FORMAT", "log-format"},
	{"S3_FORCE_PATH_STYLE", "s3-force-path-style"},
}

// parseRunSettings registers and parses the run command's settings, with args, as cmdRun does.
func parseRunSettings(args []string) (*runnerSettings, error) {
	e := &env{stdout: io.Discard, stderr: io.Discard, now: time.Now}
	s := &settings{fs: newFlagSet(e, "run", "run", "creditrecon run")}
	var rs runnerSettings
	rs.register(s)
	_, err := s.parse(args)
	return &rs, err
}

// FuzzSettingsEnv: any value of any decimal, integer, float, duration, boolean, date or list
// setting never panics; a bad value is a usage error naming the environment variable (when it
// does not parse) or its flag (when it parses but is out of range); and the flag accepts
// exactly the values the variable does.
func FuzzSettingsEnv(f *testing.F) {
	for i := range envSettings {
		for _, v := range []string{"abc", "-1", "10", "1.5", "0.02", " 25 ", "NaN", "Inf", "1e10000", "1e-10000", "10m", "-5m",
			"2026-02-30", "yes", "true", "referral,bogus", ",", "Mars/Olympus", "25.0", "0x10", "9223372036854775808"} {
			f.Add(uint8(i), v)
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, value string) {
		if value == "" || strings.ContainsRune(value, 0) {
			return // an empty variable is unset; a NUL cannot be in the environment
		}
		st := envSettings[int(which)%len(envSettings)]
		for _, o := range envSettings {
			t.Setenv(o.env, "")
		}
		t.Setenv("DATABASE_URL", "postgres://app@localhost/credits")
		t.Setenv(st.env, value)
		rs, envErr := parseRunSettings(nil)
		var ue *usageError
		if envErr != nil {
			if !errors.As(envErr, &ue) || !strings.Contains(envErr.Error(), st.env+":") {
				t.Errorf("%s=%q: error %q, want a usage error naming %s", st.env, value, envErr, st.env)
			}
		} else if err := rs.validate(); err != nil {
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), st.flag+":") {
				t.Errorf("%s=%q: validate error %q, want a usage error naming %s", st.env, value, err, st.flag)
			}
		}
		t.Setenv(st.env, "")
		_, flagErr := parseRunSettings([]string{"--" + st.flag + "=" + value})
		if (envErr == nil) != (flagErr == nil) {
			t.Errorf("%q: from %s err = %v, from --%s err = %v; want both to accept or both to refuse", value, st.env, envErr, st.flag, flagErr)
		}
	})
}

// FuzzDatabaseURLValidate: common.validate never panics; it accepts only postgres:// and
// postgresql:// URLs the driver can parse (so a bad URL fails at start, exit 2, not at connect
// time); its errors name database-url and never show the URL's password.
func FuzzDatabaseURLValidate(f *testing.F) {
	prefixes := []string{"", "postgres://", "postgresql://", "postgres://app:%s@", "mysql://app:%s@", "POSTGRES://"}
	for i := range prefixes {
		for _, rest := range []string{"db.internal/credits", "db.internal:5432/credits?sslmode=verify-full", "h st/db", "h/db sslmode=disable",
			"h/db\n", "h:99999/db", "h/db?sslmode=verify-fulll", "[::1]:5432/db", "%2Ftmp%2Fpg/db", "h/db?connect_timeout=x", "h/%zz", "@h/db",
			"?host=/run/postgresql&dbname=credits", "h/db?", "h/db#frag", "?='"} {
			f.Add(uint8(i), rest, []byte("hunter2"))
		}
	}
	f.Fuzz(func(t *testing.T, prefix uint8, rest string, pw []byte) {
		// The password is distinctive (hex between markers) so that finding it in a message
		// can only mean it was echoed.
		secret := "Zq" + hex.EncodeToString(pw) + "qZ"
		raw := strings.Replace(prefixes[int(prefix)%len(prefixes)], "%s", secret, 1) + rest
		c := common{databaseURL: raw, logFormat: "json", timezone: "UTC"}
		_, err := c.validate()
		if err == nil {
			if !strings.HasPrefix(raw, "postgres://") && !strings.HasPrefix(raw, "postgresql://") {
				t.Errorf("validate accepted %q, want only postgres:// or postgresql:// URLs", raw)
			}
			if strings.IndexFunc(raw, unicode.IsSpace) >= 0 {
				t.Errorf("validate accepted %q, which holds white space", raw)
			}
			want, perr := pq.NewConfig(raw)
			if perr != nil {
				t.Errorf("validate accepted %q, which the driver refuses: %v", raw, perr)
				return
			}
			// validate may complete the URL (a default sslmode); it must still name the same
			// server, database and credentials.
			got, perr := pq.NewConfig(c.databaseURL)
			if perr != nil || got.Host != want.Host || got.Port != want.Port || got.Database != want.Database ||
				got.User != want.User || got.Password != want.Password {
				t.Errorf("validate rewrote %q as %q: host %q port %d db %q user %q (%v), want host %q port %d db %q user %q",
					raw, c.databaseURL, got.Host, got.Port, got.Database, got.User, perr, want.Host, want.Port, want.Database, want.User)
			}
			return
		}
		var ue *usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "database-url:") {
			t.Errorf("validate(%q): error %q, want a usage error naming database-url", raw, err)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("validate(%q): error %q shows the password", raw, err)
		}
	})
}
