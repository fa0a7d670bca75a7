package synth

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"time"
)

// DemoUsageRows is the usage size of the README demo (and the default of Options.UsageRows).
const DemoUsageRows = 20_000

// DefaultStart is the default first day of usage: fixed, so that a seed alone names a population.
var DefaultStart = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// Options describes a population. The zero value of every field means its default (see
// DefaultOptions); the rates accept a negative value for "none".
//
// The default proportions are those of the reference population of PERF-NOTES (10,000,000 usage
// rows, 300k users, 60k referrals, 20k templates), with floors that keep small sizes interesting:
// at DemoUsageRows a few referrers pass 25 referrals and $500 of referral spend, a few referred
// users pass $1,000 of serverless spend, and a few templates pass 86,400 runtime seconds. They
// get there the way real data does: a few heavy users ("whales", the busiest accounts) carry a
// large share of the usage, favour serverless and were mostly referred by the top referrers.
type Options struct {
	// Seed names the population: the same Options give the same rows, byte for byte, on the same
	// PostgreSQL build (the math functions come from its C library).
	Seed int64
	// UsageRows is the number of usage_events rows Generate writes (default DemoUsageRows).
	UsageRows int
	// Users is the number of users (default 3% of UsageRows, at least 2,000).
	Users int
	// Templates is the number of templates (default 0.2% of UsageRows, at least 200).
	Templates int
	// Start is the first instant of usage (default DefaultStart); usage ends at Start+Days.
	Start time.Time
	// Days is the length of the usage history in days (default 365).
	Days int
	// ReferralShare is the share of users that were referred (default 0.2).
	ReferralShare float64
	// SelfReferrals is the number of referrals turned into self-referrals, an anomaly the job must
	// ignore (default 0).
	SelfReferrals int
	// RefundRate is the share of usage rows that are refunds: negative amounts, no runtime
	// (default 0.01).
	RefundRate float64
	// LateRate is the share of usage rows ingested 1 to 30 days after they occurred (default 0.02);
	// the others are ingested within minutes.
	LateRate float64
	// AnomalyRate is the share of bad usage rows: unknown users, unknown templates, NaN amounts
	// (default 0.0005).
	AnomalyRate float64
	// Parallel is the number of connections that write usage rows at once (default 2). It does
	// not change the data.
	Parallel int
	// Truncate empties the source tables first; without it Generate refuses non-empty tables.
	Truncate bool
	// Logf, if set, receives a line per step of Generate with its duration.
	Logf func(format string, args ...any)
}

// DefaultOptions returns the default population for a number of usage rows, every field set.
func DefaultOptions(usageRows int) Options {
	return Options{UsageRows: usageRows}.withDefaults()
}

func (o Options) withDefaults() Options {
	if o.UsageRows <= 0 {
		o.UsageRows = DemoUsageRows
	}
	if o.Users <= 0 {
		o.Users = max(2000, o.UsageRows*3/100)
	}
	if o.Templates <= 0 {
		o.Templates = max(200, o.UsageRows/500)
	}
	if o.Start.IsZero() {
		o.Start = DefaultStart
	}
	if o.Days <= 0 {
		o.Days = 365
	}
	rate := func(r *float64, def float64) {
		switch {
		case *r == 0:
			*r = def
		case *r < 0:
			*r = 0
		}
	}
	rate(&o.ReferralShare, 0.2)
	rate(&o.RefundRate, 0.01)
	rate(&o.LateRate, 0.02)
	rate(&o.AnomalyRate, 0.0005)
	if o.Parallel <= 0 {
		o.Parallel = 2
	}
	return o
}

func (o Options) validate() error {
	switch {
	case o.ReferralShare > 1:
		return fmt.Errorf("synth options: ReferralShare %v is above 1", o.ReferralShare)
	case o.RefundRate > 1, o.LateRate > 1, o.AnomalyRate > 1:
		return fmt.Errorf("synth options: rates must be at most 1")
	case o.SelfReferrals < 0:
		return fmt.Errorf("synth options: SelfReferrals %d is negative", o.SelfReferrals)
	case o.Users < 2:
		return fmt.Errorf("synth options: Users %d: need at least 2 (a referral needs two accounts)", o.Users)
	case o.Users > math.MaxInt32 || o.Templates > math.MaxInt32:
		return fmt.Errorf("synth options: too many users or templates")
	}
	return nil
}

// Distribution constants. They are not options: changing one changes every population.
const (
	userZipf        = 0.8  // exponent of the users' activity ranks (1 would be Zipf proper)
	templateZipf    = 1.3  // exponent of the templates' popularity ranks
	whaleReferred   = 0.75 // probability that a whale was referred
	influencerShare = 0.35 // share of non-whale referrals made by the influencers
	whaleServerless = 12   // whales run this many serverless workers at once
	templateRows    = 0.4  // share of pod and serverless rows that run a template
	storageTemplate = 0.01 // share of storage rows that carry a template id (earn nothing)
	ownTemplate     = 0.05 // share of template rows run by the template's creator
	nanShare        = 0.2  // share of anomalies that are NaN amounts

	// users.country (SPEC 8.1): a European country, US, another country, null, and the rest
	// (4%) odd values, half known once trimmed and upper-cased (' us '), half unknown ('ZZ').
	europeShare  = 0.35
	usShare      = 0.45
	otherShare   = 0.08
	nullCountry  = 0.08
	messyCountry = 0.02

	// credit_loads (SPEC 8.1), per referred user: a first load 0 to 10 days after the referral
	// (loadExact of them at the referral's very instant), for moreLoads of those 1 to 3 more up to
	// the end of the history, and a refund of (part of) the first load; a load before the
	// referral. Per other user: one load. Per load: late ingestion.
	loadShare       = 0.75
	loadExact       = 0.02
	moreLoads       = 1.0 / 3
	loadRefund      = 0.04
	loadBefore      = 0.07
	unreferredLoads = 0.05
	loadLate        = 0.03
	// AppendDay writes a load per dayLoadRows usage rows, for a referred user dayLoadReferred of
	// the time, a refund dayLoadRefund of the time.
	dayLoadRows     = 100
	dayLoadReferred = 0.8
	dayLoadRefund   = 0.02
)

// The countries of users.country, by kind. A code is repeated to weigh it.
var (
	europeCountries = []string{"DE", "DE", "DE", "FR", "FR", "GB", "GB", "GB", "NL", "NL", "ES", "IT",
		"PL", "SE", "IE", "CH", "NO", "AT", "BE", "PT", "DK", "FI"}
	otherCountries = []string{"CA", "CA", "BR", "IN", "IN", "JP", "AU", "SG", "KR", "MX"}
	// messyCountries are known countries once trimmed and upper-cased (SPEC 8.1).
	messyCountries = []string{" us ", "us", "Us", "de", " DE", "fr ", "gb", "Nl"}
	// unknownCountries are not ISO 3166-1 alpha-2 codes assigned to a country: user-assigned
	// (ZZ, XX), reserved (EU, UK), three letters, digits, empty, blank.
	unknownCountries = []string{"ZZ", "EU", "XX", "USA", "12", "", "UK", " "}
)

// loadAmounts are the amounts of a load (USD) and their cumulative probabilities: the first two
// alone stay below a $10 minimum.
var (
	loadAmounts   = []string{"5.00", "9.99", "10.00", "25.00", "50.00", "100.00", "250.00"}
	loadAmountCum = []float64{0.06, 0.10, 0.40, 0.68, 0.86, 0.98}
)

// plan is Options turned into the constants the SQL needs.
type plan struct {
	o           Options
	users       int64 // U
	templates   int64 // T
	whales      int64 // users 1..whales are the busiest
	influencers int64 // referrer ranks 1..influencers share influencerShare of referrals
	early       int64 // referrer ranks up to early are old accounts
	referrer    perm  // referrer rank → user number
	creator     perm  // template creator rank → user number
	userLabel   perm  // user number → the number in its id (so user 1 is not always the busiest)
	tplLabel    perm  // template number → the number in its id
	startEpoch  float64
	endEpoch    float64
	windowSec   float64 // users are created during the window before endEpoch
}

func newPlan(o Options) plan {
	o = o.withDefaults()
	p := plan{o: o, users: int64(o.Users), templates: int64(o.Templates)}
	p.whales = max(12, p.users/1000)
	referrals := float64(p.users) * o.ReferralShare
	p.influencers = max(4, int64(math.Round(referrals/6000)))
	p.early = max(2*p.influencers, p.users/100)
	p.referrer = p.newPerm(p.users, 0.6180339887, sReferrerPerm)
	p.creator = p.newPerm(p.users, 0.7548776662, sCreatorPerm)
	p.userLabel = p.newPerm(p.users, 0.5698402910, sUserLabel)
	p.tplLabel = p.newPerm(p.templates, 0.6180339887, sTemplateLabel)
	p.startEpoch = epoch(o.Start)
	p.endEpoch = epoch(o.Start.AddDate(0, 0, o.Days))
	p.windowSec = max(p.endEpoch-p.startEpoch, 365*86400)
	return p
}

// perm is a one-to-one map of [1, n] onto itself: x → ((x-1)·mult + off) mod n + 1.
type perm struct{ mult, inv, off, n int64 }

func (p plan) newPerm(n int64, f float64, s int) perm {
	if n <= 1 {
		return perm{mult: 1, inv: 1, n: max(n, 1)}
	}
	m := coprimeNear(n, f)
	return perm{
		mult: m,
		inv:  new(big.Int).ModInverse(big.NewInt(m), big.NewInt(n)).Int64(),
		off:  int64(uint64(p.stream(s)) % uint64(n)),
		n:    n,
	}
}

// apply is SQL for the image of expr.
func (q perm) apply(expr string) string {
	return fmt.Sprintf("((((%s) - 1) * %d + %d) %% %d + 1)", expr, q.mult, q.off, q.n)
}

// invert is SQL for the preimage of expr.
func (q perm) invert(expr string) string {
	return fmt.Sprintf("((((%s) - 1 + %d) %% %d) * %d %% %d + 1)", expr, q.n-q.off, q.n, q.inv, q.n)
}

// coprimeNear returns the first number at or above n*f that is coprime with n (1 for n <= 2).
func coprimeNear(n int64, f float64) int64 {
	if n <= 2 {
		return 1
	}
	c := max(1, int64(float64(n)*f))
	for new(big.Int).GCD(nil, nil, big.NewInt(c), big.NewInt(n)).Int64() != 1 {
		c++
	}
	return c
}

func epoch(t time.Time) float64 { return float64(t.UnixMicro()) / 1e6 }

// Random streams: each draw of a row uses its own stream, so draws are independent.
const (
	sUser = iota + 1
	sProduct
	sTemplate
	sTemplateRank
	sOwn
	sZ1
	sZ2
	sRate
	sAmount
	sTime
	sRefund
	sLate
	sLateDays
	sMinutes
	sAnomaly
	sAnomalyKind
	sAnomalyID
	sFocus
	sUserCreated
	sCreator
	sTemplateCreated
	sReferred
	sInfluencer
	sInfluencerPick
	sReferrerRank
	sReferralDelay
	sReferralDelay2
	sSelfReferral
	sReferrerPerm
	sCreatorPerm
	sUserLabel
	sTemplateLabel
	sOlderReferrer
	// Streams added later go last: the numbers of the others name their populations.
	sCountry
	sCountryPick
	sLoad
	sLoadDelay
	sLoadAmount
	sLoadMore
	sLoadRefund
	sLoadPartial
	sLoadBefore
	sLoadTime
	sLoadOtherAmount
	sLoadLate
	sLoadLateDays
	sLoadMinutes
	sDayLoadWho
	sDayLoadPick
	sDayLoadUser
	sDayLoadTime
	sDayLoadLate
	sDayLoadMinutes
	sDayLoadAmount
	sDayLoadRefund
	sDayLoadOrder
)

// stream is the hash seed of one random stream: splitmix64 of (Seed, stream).
func (p plan) stream(s int) int64 {
	z := uint64(p.o.Seed) + uint64(s)*0x9E3779B97F4A7C15
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return int64(z ^ (z >> 31))
}

// u is SQL for a uniform draw in [0, 1) of stream s, a pure function of (seed, s, expr): no
// random(), so parallel workers and statement order cannot change it.
func (p plan) u(expr string, s int) string {
	return fmt.Sprintf("((hashint8extended((%s)::int8, %d) & 4503599627370495)::float8 * 2.220446049250313e-16::float8)", expr, p.stream(s))
}

// zipf is SQL for a rank in [1, n] with P(rank = k) roughly proportional to k^-s, from the
// uniform draw uexpr (the inverse CDF of a continuous power law).
func zipf(uexpr string, n int64, s float64) string {
	if s == 1 {
		return fmt.Sprintf("greatest(1, least(%d, floor(exp((%s) * %s))::int8))", n, uexpr, flt(math.Log(float64(n+1))))
	}
	a := math.Pow(float64(n+1), 1-s) - 1
	return fmt.Sprintf("greatest(1, least(%d, floor(power(1.0 + (%s) * %s, %s))::int8))", n, uexpr, flt(a), flt(1/(1-s)))
}

func flt(f float64) string { return strconv.FormatFloat(f, 'g', 17, 64) + "::float8" }

// userCreated is SQL for the creation time (epoch seconds) of user number k: uniform over the
// window before the end of usage; whales and top referrers are old accounts (first 30%).
func (p plan) userCreated(k string) string {
	return fmt.Sprintf("(%s - %s * CASE WHEN (%s) <= %d OR %s <= %d THEN 1.0 - 0.3 * %s ELSE %s END)",
		flt(p.endEpoch), flt(p.windowSec), k, p.whales, p.referrer.invert(k), p.early,
		p.u(k, sUserCreated), p.u(k, sUserCreated))
}

// creatorOf is SQL for the user number of the creator of template number t.
func (p plan) creatorOf(t string) string {
	return p.creator.apply(zipf(p.u(t, sCreator), p.users, 1))
}

// templateCreated is SQL for the creation time of template t whose creator was created at
// creatorCreated: within the first 60% of the creator's remaining window.
func (p plan) templateCreated(t, creatorCreated string) string {
	return fmt.Sprintf("(%[1]s - (%[1]s - %[2]s) * (1.0 - 0.6 * %[3]s))", flt(p.endEpoch), creatorCreated, p.u(t, sTemplateCreated))
}

// userID is SQL for the id of user number k, which must be in [1, Users].
func (p plan) userID(k string) string { return p.rawUserID(p.userLabel.apply(k)) }

// rawUserID is SQL for the id labelled n (above Users: an unknown user).
func (p plan) rawUserID(n string) string { return fmt.Sprintf("('user_' || (%s)::text)", n) }

// templateID is SQL for the id of template number t, which must be in [1, Templates].
func (p plan) templateID(t string) string { return p.rawTemplateID(p.tplLabel.apply(t)) }

// rawTemplateID is SQL for the id labelled n (above Templates: an unknown template).
func (p plan) rawTemplateID(n string) string { return fmt.Sprintf("('tpl_' || (%s)::text)", n) }
