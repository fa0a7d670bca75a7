package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/lib/pq"
	"github.com/shopspring/decimal"

	"github.com/runpod/creditrecon/jobs"
	sqlstore "github.com/runpod/creditrecon/sql"
	"github.com/runpod/creditrecon/terms"
)

// settings binds flags to environment variables: a flag's default comes from its variable, and a
// flag on the command line wins. A bad variable is reported by its name after parsing.
type settings struct {
	fs   *flag.FlagSet
	errs []error
}

func (s *settings) bind(name, envName, usage string, set func(string) error) {
	if v, ok := lookupEnv(envName); ok && v != "" {
		if err := set(v); err != nil {
			s.errs = append(s.errs, fmt.Errorf("%s: %w", envName, err))
		}
	}
	if envName != "" {
		usage += " (env " + envName + ")"
	}
	s.fs.Func(name, usage, func(v string) error { return set(v) })
}

func (s *settings) String(p *string, name, envName, usage string) {
	s.bind(name, envName, usage+fmt.Sprintf(" (default %q)", *p), func(v string) error { *p = v; return nil })
}

func (s *settings) Decimal(p *decimal.Decimal, name, envName, usage string) {
	s.bind(name, envName, usage+" (default "+p.String()+")", func(v string) error {
		d, err := decimal.NewFromString(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("not a decimal number: %q", v)
		}
		*p = d
		return nil
	})
}

func (s *settings) Int64(p *int64, name, envName, usage string) {
	s.bind(name, envName, usage+fmt.Sprintf(" (default %d)", *p), func(v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer: %q", v)
		}
		*p = n
		return nil
	})
}

func (s *settings) Float(p *float64, name, envName, usage string) {
	s.bind(name, envName, usage+fmt.Sprintf(" (default %v)", *p), func(v string) error {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return fmt.Errorf("not a number: %q", v)
		}
		*p = f
		return nil
	})
}

func (s *settings) Bool(p *bool, name, envName, usage string) {
	s.bind(name, envName, usage+fmt.Sprintf(" (default %t)", *p), func(v string) error {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("not true or false: %q", v)
		}
		*p = b
		return nil
	})
}

func (s *settings) Duration(p *time.Duration, name, envName, usage string) {
	s.bind(name, envName, usage+fmt.Sprintf(" (default %s)", *p), func(v string) error {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("not a duration like 10m: %q", v)
		}
		*p = d
		return nil
	})
}

// parse parses args and returns the positional arguments; any bad flag or variable is a usage
// error that names it.
func (s *settings) parse(args []string) ([]string, error) {
	rest, err := parseArgs(s.fs, args)
	if err != nil {
		return nil, err
	}
	if len(s.errs) > 0 {
		return nil, &usageError{errors.Join(s.errs...)}
	}
	return rest, nil
}

// parseNone parses args for command name, which takes no positional argument.
func (s *settings) parseNone(name string, args []string) error {
	rest, err := s.parse(args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageErrorf("%s: unexpected argument %q", name, rest[0])
	}
	return nil
}

// common are the settings every database command shares.
type common struct {
	databaseURL string
	logFormat   string
	timezone    string
}

func (c *common) register(s *settings) {
	c.timezone = "UTC"
	c.logFormat = "json"
	s.String(&c.databaseURL, "database-url", "DATABASE_URL", "PostgreSQL URL, e.g. postgres://user@host/db?sslmode=verify-full")
	s.String(&c.logFormat, "log-format", "CREDITRECON_LOG_FORMAT", "log lines on stderr: json or text")
	s.String(&c.timezone, "timezone", "CREDITRECON_TIMEZONE", "IANA zone of DATE cutoffs and business dates")
}

func (c *common) validate() (*time.Location, error) {
	var errs []error
	if c.databaseURL == "" {
		errs = append(errs, errors.New("database-url: not set (set DATABASE_URL or --database-url)"))
	} else if err := checkDatabaseURL(c.databaseURL); err != nil {
		errs = append(errs, fmt.Errorf("database-url: %w", err))
	} else if u, err := url.Parse(c.databaseURL); err == nil && !u.Query().Has("sslmode") {
		// TLS with the server's certificate and host name verified, unless the URL (or PGSSLMODE,
		// which the driver reads) says otherwise: the driver's own default, require, encrypts but
		// accepts any certificate. An explicit sslmode is respected, disable included (local
		// clusters, Unix sockets, which never use TLS); an unknown one fails checkDatabaseURL.
		if v, ok := lookupEnv("PGSSLMODE"); !ok || v == "" {
			// Appended to the URL as given: u.String() would drop the "//" of a URL with no host,
			// path or user ("postgres://?host=/run/pg"), which the driver then no longer reads as a URL.
			base, fragment, hasFragment := strings.Cut(c.databaseURL, "#")
			sep := "?"
			if u.ForceQuery || u.RawQuery != "" {
				sep = "&"
			}
			c.databaseURL = base + sep + "sslmode=verify-full"
			if hasFragment {
				c.databaseURL += "#" + fragment
			}
		}
	}
	if c.logFormat != "json" && c.logFormat != "text" {
		errs = append(errs, fmt.Errorf("log-format: must be json or text, got %q", c.logFormat))
	}
	loc, err := time.LoadLocation(c.timezone)
	if err != nil {
		errs = append(errs, fmt.Errorf("timezone: unknown zone %q", c.timezone))
	}
	if len(errs) > 0 {
		return nil, &usageError{errors.Join(errs...)}
	}
	return loc, nil
}

// checkDatabaseURL accepts what the driver can connect with, checked without connecting, so that
// a malformed DATABASE_URL is a usage error (exit 2) rather than a failed connection (exit 1).
// Its errors never quote the URL: it may hold a password.
func checkDatabaseURL(v string) error {
	if !strings.HasPrefix(v, "postgres://") && !strings.HasPrefix(v, "postgresql://") {
		return errors.New("must be a postgres:// or postgresql:// URL")
	}
	if strings.IndexFunc(v, unicode.IsSpace) >= 0 {
		return errors.New("contains white space: percent-encode spaces (%20) in the user, password or database name, " +
			"and remove any trailing newline")
	}
	u, err := url.Parse(v)
	if err != nil {
		return errors.New("not a valid URL: percent-encode reserved characters (@ : / ? # %) in the user, password or database name")
	}
	if _, err := pq.NewConfig(v); err != nil {
		msg := err.Error()
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
		return errors.New(msg)
	}
	return nil
}

func (c *common) open(ctx context.Context) (*sqlstore.Store, error) {
	st, err := sqlstore.Open(ctx, c.databaseURL)
	if err != nil {
		return nil, fmt.Errorf("%w (check DATABASE_URL)", err)
	}
	return st, nil
}

// programSettings are the program terms of a command: a terms file (SPEC 7), or the program
// flags of SPEC 2.4, never both.
type programSettings struct {
	cfg       *jobs.Config
	fs        *flag.FlagSet
	termsFile string
	flags     [][2]string // the program flags and their variables
}

// programFlags binds the terms file, the program parameters (SPEC 2.4) and the input checks
// (SPEC 3.4). Call load after parsing.
func programFlags(s *settings, c *jobs.Config) *programSettings {
	ps := &programSettings{cfg: c, fs: s.fs}
	s.String(&ps.termsFile, "terms", "CREDITRECON_TERMS",
		"the programs' terms file (YAML, see terms/seed.yaml); without it the program flags below are the terms")
	for _, name := range []string{"programs", "referral-rate", "referral-min-referrals", "referral-min-spend", "template-rate",
		"template-min-runtime-seconds", "serverless-threshold", "serverless-referrer-bonus", "serverless-referred-bonus",
		"referral-start", "template-start", "serverless-start"} {
		ps.flags = append(ps.flags, [2]string{name, "CREDITRECON_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))})
	}
	p := &c.Params
	programs := "referral,template,serverless_referral"
	s.bind("programs", "CREDITRECON_PROGRAMS", "enabled programs, comma-separated (default \""+programs+"\")", func(v string) error {
		p.Referral.Enabled, p.Template.Enabled, p.Serverless.Enabled = false, false, false
		for _, name := range strings.Split(v, ",") {
			switch strings.TrimSpace(name) {
			case "referral":
				p.Referral.Enabled = true
			case "template":
				p.Template.Enabled = true
			case "serverless_referral":
				p.Serverless.Enabled = true
			case "":
			default:
				return fmt.Errorf("unknown program %q (known: %s)", name, programs)
			}
		}
		return nil
	})
	s.Decimal(&p.Referral.Rate, "referral-rate", "CREDITRECON_REFERRAL_RATE", "Referral Program commission rate")
	s.Int64(&p.Referral.MinReferrals, "referral-min-referrals", "CREDITRECON_REFERRAL_MIN_REFERRALS", "referrals needed for the Referral Program")
	s.Decimal(&p.Referral.MinSpend, "referral-min-spend", "CREDITRECON_REFERRAL_MIN_SPEND", "referral spend (USD) needed for the Referral Program")
	s.Decimal(&p.Template.Rate, "template-rate", "CREDITRECON_TEMPLATE_RATE", "Template Program commission rate")
	s.Int64(&p.Template.MinRuntimeSeconds, "template-min-runtime-seconds", "CREDITRECON_TEMPLATE_MIN_RUNTIME_SECONDS", "template runtime needed for the Template Program")
	s.Decimal(&p.Serverless.Threshold, "serverless-threshold", "CREDITRECON_SERVERLESS_THRESHOLD", "serverless spend (USD) that triggers the bonus")
	s.Decimal(&p.Serverless.ReferrerBonus, "serverless-referrer-bonus", "CREDITRECON_SERVERLESS_REFERRER_BONUS", "serverless bonus to the referrer (USD)")
	s.Decimal(&p.Serverless.ReferredBonus, "serverless-referred-bonus", "CREDITRECON_SERVERLESS_REFERRED_BONUS", "serverless bonus to the referred user (USD)")
	start := func(p *time.Time, program string) {
		s.bind(program+"-start", "CREDITRECON_"+strings.ToUpper(program)+"_START", "program start date YYYY-MM-DD (UTC); usage before it earns nothing", func(v string) error {
			t, err := time.Parse(time.DateOnly, strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("not a date YYYY-MM-DD: %q", v)
			}
			*p = t
			return nil
		})
	}
	start(&p.Referral.Start, "referral")
	start(&p.Template.Start, "template")
	start(&p.Serverless.Start, "serverless")
	s.Float(&c.MaxAnomalyShare, "max-anomaly-share", "CREDITRECON_MAX_ANOMALY_SHARE", "fail the run when anomalies exceed this share of usage rows")
	s.Duration(&c.ClockSkew, "clock-skew", "CREDITRECON_CLOCK_SKEW", "usage dated further than this after the run's clock is an anomaly")
	s.Decimal(&c.MaxEventAmount, "max-event-amount", "CREDITRECON_MAX_EVENT_AMOUNT", "a usage row above this |amount_usd| is an anomaly")
	s.Duration(&c.IncrementalMaxAge, "incremental-max-age", "CREDITRECON_INCREMENTAL_MAX_AGE",
		"extend the aggregates of a run at most this old instead of reading the whole history (0: always full)")
	s.Duration(&c.LateMargin, "late-margin", "CREDITRECON_LATE_MARGIN",
		"how long before a run's snapshot a row it could not see may have been stamped (ingested_at)")
	return ps
}

// load reads the draw secret and the terms file, if one is given, into the config: a usage error
// names the file, line and key of each problem, or the program flags given beside it (one source
// of truth).
func (ps *programSettings) load() error {
	// The draw secret comes only from the environment (a Kubernetes Secret), raw: a flag would
	// show it in the process list.
	if v, ok := lookupEnv("CREDITRECON_DRAW_SECRET"); ok {
		ps.cfg.DrawSecret = []byte(v)
	}
	if ps.termsFile == "" {
		return nil
	}
	var given []string
	for _, f := range ps.flags {
		if v, ok := lookupEnv(f[1]); flagSet(ps.fs, f[0]) || ok && v != "" {
			given = append(given, "--"+f[0]+" ("+f[1]+")")
		}
	}
	if len(given) > 0 {
		return usageErrorf("%s: set in the terms file %s, not as flags or variables: remove them, or drop --terms (CREDITRECON_TERMS)",
			strings.Join(given, ", "), ps.termsFile)
	}
	b, err := os.ReadFile(ps.termsFile)
	if err != nil {
		return usageErrorf("terms: %v", err)
	}
	t, err := terms.Parse(ps.termsFile, b)
	if err != nil {
		return usageErrorf("terms: %w", err)
	}
	sum := sha256.Sum256(b)
	ps.cfg.Terms = jobs.TermsSource{File: ps.termsFile, SHA256: hex.EncodeToString(sum[:]), Terms: t}
	return nil
}

// parseCutoff parses a DATE (YYYY-MM-DD, 00:00 in loc) or a TIME (RFC 3339, or
// YYYY-MM-DDTHH:MM[:SS] in loc).
func parseCutoff(v string, loc *time.Location) (time.Time, error) {
	v = strings.TrimSpace(v)
	if t, err := time.ParseInLocation(time.DateOnly, v, loc); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04"} {
		if t, err := time.ParseInLocation(layout, v, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is neither a DATE (YYYY-MM-DD) nor a TIME (RFC 3339, e.g. 2026-02-01T06:00:00Z)", v)
}
