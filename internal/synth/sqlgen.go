package synth

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The generator's SQL. Every value is a pure function of (Seed, row number): u() hashes them,
// so no statement depends on random(), on execution order or on parallel workers. Layers of
// subqueries with OFFSET 0 (an optimisation fence) compute each intermediate value once per row.

func (p plan) usersSQL() string {
	return fmt.Sprintf(`INSERT INTO users (id, created_at, country)
SELECT %s, to_timestamp(%s), %s FROM generate_series(1, %d::int8) AS k`,
		p.userID("k"), p.userCreated("k"), p.country("k"), p.users)
}

// country is SQL for users.country of user number k: europeShare a European country, usShare
// US, otherShare another country, nullCountry null, messyCountry a known country written
// untidily (' us '), the rest a value SPEC 8.1 calls unknown ('ZZ', 'EU', 'USA', the empty string).
func (p plan) country(k string) string {
	c, pick := p.u(k, sCountry), p.u(k, sCountryPick)
	bound := europeShare
	when := func(list []string) string {
		return fmt.Sprintf("WHEN %s < %s THEN %s", c, flt(bound), pickFrom(list, pick))
	}
	var b strings.Builder
	b.WriteString("CASE ")
	b.WriteString(when(europeCountries))
	bound += usShare
	fmt.Fprintf(&b, " WHEN %s < %s THEN 'US'", c, flt(bound))
	bound += otherShare
	b.WriteString(" " + when(otherCountries))
	bound += nullCountry
	fmt.Fprintf(&b, " WHEN %s < %s THEN NULL", c, flt(bound))
	bound += messyCountry
	b.WriteString(" " + when(messyCountries))
	fmt.Fprintf(&b, " ELSE %s END", pickFrom(unknownCountries, pick))
	return b.String()
}

// pickFrom is SQL for the element of list at the uniform draw uexpr.
func pickFrom(list []string, uexpr string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = "'" + strings.ReplaceAll(s, "'", "''") + "'"
	}
	return fmt.Sprintf("(ARRAY[%s]::text[])[1 + floor((%s) * %d)::int]", strings.Join(q, ", "), uexpr, len(list))
}

// loadAmount is SQL for the amount of a load (numeric, 2 decimals) at the uniform draw uexpr.
func loadAmount(uexpr string) string {
	cum := make([]string, len(loadAmountCum))
	for i, c := range loadAmountCum {
		cum[i] = strconv.FormatFloat(c, 'g', -1, 64)
	}
	return fmt.Sprintf("(ARRAY[%s]::numeric[])[1 + width_bucket(%s, ARRAY[%s]::float8[])]",
		strings.Join(loadAmounts, ", "), uexpr, strings.Join(cum, ", "))
}

// loadsSQL inserts the credit loads of the population (SPEC 8.1), from the users and the
// referrals tables. Each user number k has slots j: 0 a load before referred_at (strictly, 10%
// of them one second before), 1 the first load, 2..4 more loads, 5 a refund of the first load.
// A referred user's first load comes 0 to 10 days after referred_at (early more often; a few at
// referred_at exactly), more loads between it and the end of the history, the refund 1 hour to
// 20 days after it; another user's one load anywhere in its lifetime within the history. Loads
// after the history's end are not written. Ids follow ingestion.
func (p plan) loadsSQL() string {
	r := strings.NewReplacer(
		"{U}", fmt.Sprint(p.users),
		"{start}", flt(p.startEpoch), "{end}", flt(p.endEpoch),
		"{userID}", p.userID("k"),
		"{userCreated}", p.userCreated("k"),
		"{referredK}", p.userLabel.invert("substr(referred_user_id, 6)::int8"),
		"{ul}", p.u("k", sLoad), "{uf}", p.u("k", sLoadDelay), "{um}", p.u("k", sLoadMore),
		"{ur}", p.u("k", sLoadRefund), "{ub}", p.u("k", sLoadBefore),
		"{partial}", p.u("k", sLoadPartial),
		"{a1}", loadAmount(p.u("k", sLoadAmount)),
		"{aj}", loadAmount(p.u("kj", sLoadOtherAmount)),
		"{ut}", p.u("kj", sLoadTime),
		"{lt}", p.u("kj", sLoadLate), "{ld}", p.u("kj", sLoadLateDays), "{md}", p.u("kj", sLoadMinutes),
		"{loadShare}", flt(loadShare), "{unreferred}", flt(unreferredLoads),
		"{exact}", flt(loadExact), "{more}", flt(moreLoads), "{refund}", flt(loadRefund),
		"{before}", flt(loadBefore), "{late}", flt(loadLate),
	)
	return r.Replace(`INSERT INTO credit_loads (id, user_id, amount_usd, loaded_at, ingested_at)
SELECT row_number() OVER (ORDER BY ing, k, j), {userID}, amount, to_timestamp(la), to_timestamp(ing)
FROM (
	SELECT k, j, amount, la,
		CASE WHEN {lt} < {late} THEN greatest(la + 30 + {md} * 870, least(la + 86400 * (1 + 13 * {ld}), {end}))
			ELSE la + 30 + {md} * 870 END AS ing
	FROM (
		SELECT k, j, kj,
			CASE j WHEN 0 THEN CASE WHEN {ut} < 0.1 THEN ra - 1 ELSE ra - (ra - uc) * (0.01 + 0.98 * {ut}) END
				WHEN 1 THEN f
				WHEN 5 THEN f + 3600 + 1724400 * {ut}
				ELSE f + ({end} - f) * {ut} END AS la,
			CASE j WHEN 1 THEN a1
				WHEN 5 THEN -CASE WHEN {partial} < 0.25 THEN round(a1 * 0.5, 2) ELSE a1 END
				ELSE {aj} END AS amount
		FROM (
			SELECT k, j, k * 8 + j AS kj, uc, ra, f, a1
			FROM (
				SELECT k, uc, ra, first, more, before, refund, {a1} AS a1,
					CASE WHEN ra IS NULL THEN greatest(uc, {start}) + ({end} - greatest(uc, {start})) * {uf}
						WHEN {uf} < {exact} THEN ra
						ELSE ra + 864000 * power(({uf} - {exact}) / (1 - {exact}), 2) END AS f
				FROM (
					SELECT k, uc, ra,
						{ul} < CASE WHEN ra IS NULL THEN {unreferred} ELSE {loadShare} END AS first,
						CASE WHEN ra IS NOT NULL AND {um} < {more} THEN 1 + floor({um} / {more} * 3)::int ELSE 0 END AS more,
						ra IS NOT NULL AND ra - uc >= 60 AND {ub} < {before} AS before,
						ra IS NOT NULL AND {ur} < {refund} AS refund
					FROM (SELECT k, {userCreated} AS uc FROM generate_series(1, {U}::int8) AS k OFFSET 0) u
					LEFT JOIN (SELECT {referredK} AS k, extract(epoch FROM referred_at)::float8 AS ra FROM referrals) r USING (k)
					OFFSET 0
				) a OFFSET 0
			) b
			CROSS JOIN generate_series(0, 5) AS j
			WHERE CASE j WHEN 0 THEN before
				WHEN 1 THEN first AND f < {end}
				WHEN 5 THEN first AND refund AND f < {end}
				ELSE first AND f < {end} AND j - 1 <= more END
			OFFSET 0
		) c OFFSET 0
	) d
	WHERE la < {end}
) e`)
}

// dayLoadsSQL inserts the loads with ids $1..$2 for one day of ingestion: each for a referred
// user (dayLoadReferred of the time, drawn from the referrals in an order set by the seed) or
// any user, a lateShare of them loaded during the 30 days before the day and ingested during it,
// the others loaded during the day and ingested within minutes; dayLoadRefund of them refunds.
// A user created after the load is replaced by one of the whales (old accounts).
func (p plan) dayLoadsSQL(day *dayMode) string {
	r := strings.NewReplacer(
		"{U}", fmt.Sprint(p.users), "{W}", fmt.Sprint(p.whales),
		"{seed}", fmt.Sprint(p.stream(sDayLoadOrder)),
		"{day}", flt(day.epoch), "{lateShare}", flt(day.lateShare),
		"{userID}", p.userID("k"),
		"{k0Created}", p.userCreated("k0"),
		"{referredK}", p.userLabel.invert("substr(referred_user_id, 6)::int8"),
		"{who}", p.u("n", sDayLoadWho), "{referred}", flt(dayLoadReferred),
		"{pick}", p.u("n", sDayLoadPick), "{any}", p.u("n", sDayLoadUser),
		"{tm}", p.u("n", sDayLoadTime), "{lt}", p.u("n", sDayLoadLate), "{md}", p.u("n", sDayLoadMinutes),
		"{amount}", loadAmount(p.u("n", sDayLoadAmount)),
		"{rf}", p.u("n", sDayLoadRefund), "{refund}", flt(dayLoadRefund),
	)
	return r.Replace(`INSERT INTO credit_loads (id, user_id, amount_usd, loaded_at, ingested_at)
SELECT n, {userID}, CASE WHEN {rf} < {refund} THEN -({amount}) ELSE {amount} END, to_timestamp(la),
	to_timestamp(CASE WHEN late THEN greatest(la + 30 + md * 870, {day} + md * 86400) ELSE la + 30 + md * 870 END)
FROM (
	SELECT n, late, md, la, CASE WHEN {k0Created} > la THEN (k0 - 1) % {W} + 1 ELSE k0 END AS k
	FROM (
		SELECT n, late, md, la, coalesce(rk, 1 + floor({any} * {U})::int8) AS k0
		FROM (
			SELECT n, late, md, ri, CASE WHEN late THEN {day} - 2592000 + {tm} * 2592000 ELSE {day} + {tm} * 86400 END AS la
			FROM (
				SELECT n, {lt} < {lateShare} AS late, {md} AS md,
					CASE WHEN {who} < {referred} THEN floor({pick} * (SELECT count(*) FROM referrals))::int8 END AS ri
				FROM generate_series($1::int8, $2::int8) AS n
				OFFSET 0
			) a OFFSET 0
		) b
		LEFT JOIN (SELECT row_number() OVER (ORDER BY hashtextextended(referred_user_id, {seed}), referred_user_id) - 1 AS ri,
				{referredK} AS rk
			FROM referrals) r USING (ri)
		OFFSET 0
	) c OFFSET 0
) d`)
}

func (p plan) templatesSQL() string {
	return fmt.Sprintf(`INSERT INTO templates (id, creator_id, created_at)
SELECT %s, %s, to_timestamp(%s)
FROM (SELECT t, %s AS ct FROM generate_series(1, %d::int8) AS t OFFSET 0) x`,
		p.templateID("t"), p.userID("ct"), p.templateCreated("t", p.userCreated("ct")),
		p.creatorOf("t"), p.templates)
}

// referralsSQL: a share of the users were referred; whales by the influencers (the top
// referrers), the others by an influencer (influencerShare) or by a referrer drawn from a Zipf
// law over all users. A referrer younger than the user it would refer is replaced by one of the
// old top referrers. referred_at follows the later of the two accounts' creation: mostly within
// a day, 10% of the time 1 to 180 days later.
func (p plan) referralsSQL() string {
	rank := fmt.Sprintf(`CASE WHEN k <= %d THEN (k - 1) %% %d + 1
		WHEN %s < %s THEN 1 + floor(%s * %d)::int8
		ELSE %s END`,
		p.whales, p.influencers,
		p.u("k", sInfluencer), flt(influencerShare), p.u("k", sInfluencerPick), p.influencers,
		zipf(p.u("k", sReferrerRank), p.users, 1))
	older := p.referrer.apply(fmt.Sprintf("1 + floor(%s * %d)::int8", p.u("k", sOlderReferrer), p.early))
	return fmt.Sprintf(`INSERT INTO referrals (referred_user_id, referrer_id, referred_at)
SELECT %s, %s, to_timestamp(ra)
FROM (
	SELECT k, r, greatest(uk, %s) + delay AS ra
	FROM (
		SELECT k, uk, delay, CASE WHEN ur > uk AND %s > %d AND %s <> k THEN %s ELSE r1 END AS r
		FROM (
			SELECT k, r1, delay, %s AS uk, %s AS ur
			FROM (
				SELECT k, CASE WHEN r0 = k THEN k %% %d + 1 ELSE r0 END AS r1, delay
				FROM (
					SELECT k, %s AS r0,
						CASE WHEN %s < 0.9 THEN 86400 * power(%s, 3)
						ELSE 86400 * (1 + 179 * %s) END AS delay
					FROM generate_series(1, %d::int8) AS k
					WHERE %s < CASE WHEN k <= %d THEN %s ELSE %s END
					OFFSET 0
				) a OFFSET 0
			) b OFFSET 0
		) c OFFSET 0
	) d OFFSET 0
) e
WHERE ra < %s`,
		p.userID("k"), p.userID("r"),
		p.userCreated("r"),
		p.referrer.invert("r1"), p.early, older, older,
		p.userCreated("k"), p.userCreated("r1"),
		p.users,
		p.referrer.apply(rank),
		p.u("k", sReferralDelay), p.u("k", sReferralDelay2), p.u("k", sReferralDelay2),
		p.users,
		p.u("k", sReferred), p.whales, flt(whaleReferred), flt(p.o.ReferralShare),
		flt(p.endEpoch))
}

// selfReferralsSQL turns $1 referrals, chosen by a hash of the seed, into self-referrals.
func (p plan) selfReferralsSQL() string {
	return fmt.Sprintf(`UPDATE referrals SET referrer_id = referred_user_id WHERE referred_user_id IN (
	SELECT referred_user_id FROM referrals
	ORDER BY hashtextextended(referred_user_id, %d), referred_user_id LIMIT $1)`, p.stream(sSelfReferral))
}

// dayMode makes usageSQL write one day of ingestion instead of a whole history.
type dayMode struct {
	epoch     float64 // start of the day
	lateShare float64 // share of rows that occurred during the 30 days before
}

// usageSQL inserts the usage rows with ids $1..$2.
//
// A row's user is drawn from a power law over user numbers (user 1 is the busiest); the
// product follows the user's focus (serverless-, pod- or balanced); pod and serverless rows
// run a template 40% of the time (Zipf popularity; 5% of those by the template's creator), a
// few storage rows carry one too. occurred_at is uniform over the user's lifetime in the
// history (after the template's creation), runtimes are log-normal, amounts runtime × an hourly
// rate of 0.2–4.0 USD rounded to 6 decimals. Then refunds, late ingestion and anomalies.
//
// The statement is expression-bound: draws a row may not need sit inside CASE branches (they
// are evaluated lazily), the fenced layers carry only the columns later layers use, and the
// product is a code (pc: 0 pod, 1 serverless, 2 storage, 3 network) until the last layer.
func (p plan) usageSQL(day *dayMode) string {
	lateShare := p.o.LateRate
	if day != nil {
		lateShare = day.lateShare
	}
	r := strings.NewReplacer(
		"{W}", fmt.Sprint(p.whales),
		"{anomaly}", flt(p.o.AnomalyRate),
		"{kind}", p.u("n", sAnomalyKind),
		"{nan}", flt(nanShare),
		"{unknownUser}", p.rawUserID(fmt.Sprintf("%d + 1 + floor(%s * %d)::int8", p.users, p.u("n", sAnomalyID), p.users)),
		"{unknownTemplate}", p.rawTemplateID(fmt.Sprintf("%d + 1 + floor(%s * %d)::int8", p.templates, p.u("n", sAnomalyID), p.templates)),
		"{userID}", p.userID("k"),
		"{templateID}", p.templateID("t"),
		"{ingested}", p.ingested(day, lateShare),
		"{rate}", p.u("n", sRate),
		"{amount}", p.u("n", sAmount),
		"{lnStorage}", flt(math.Log(0.01)), "{lnStorageRange}", flt(math.Log(800)),
		"{lnNetwork}", flt(math.Log(0.001)), "{lnNetworkRange}", flt(math.Log(1000)),
		"{z}", "(sqrt(-2.0 * ln(1.0 - "+p.u("n", sZ1)+")) * cos(2.0 * pi() * "+p.u("n", sZ2)+"))",
		"{ln3600}", flt(math.Log(3600)), "{ln600}", flt(math.Log(600)),
		"{whaleServerless}", fmt.Sprint(whaleServerless),
		"{refund}", flt(p.o.RefundRate),
		"{ku}", p.fallbackUser(day),
		"{occurred}", p.occurred(day, lateShare),
		"{userCreated}", p.userCreated("k"),
		"{templateCreated}", p.templateCreated("t", p.userCreated("ct")),
		"{own}", p.u("n", sOwn), "{ownShare}", flt(ownTemplate),
		"{creator}", p.creatorOf("t"),
		"{templateRank}", zipf(p.u("n", sTemplateRank), p.templates, templateZipf),
		"{templateRows}", flt(templateRows), "{storageTemplate}", flt(storageTemplate),
		"{focus}", p.u("k0", sFocus),
		"{userRank}", zipf(p.u("n", sUser), p.users, userZipf),
		"{pu}", p.u("n", sProduct), "{tu}", p.u("n", sTemplate), "{tm}", p.u("n", sTime),
		"{lt}", p.u("n", sLate), "{md}", p.u("n", sMinutes), "{rf}", p.u("n", sRefund), "{an}", p.u("n", sAnomaly),
	)
	return r.Replace(`INSERT INTO usage_events (id, user_id, product, template_id, amount_usd, runtime_seconds, occurred_at, ingested_at)
SELECT n,
	CASE WHEN an < {anomaly} AND {kind} >= {nan} AND NOT ({kind} < 0.6 AND pc <= 1)
		THEN {unknownUser} ELSE {userID} END,
	CASE pc WHEN 0 THEN 'pod' WHEN 1 THEN 'serverless' WHEN 2 THEN 'storage' ELSE 'network' END,
	CASE WHEN an < {anomaly} AND {kind} >= {nan} AND {kind} < 0.6 AND pc <= 1 THEN {unknownTemplate}
		WHEN t IS NOT NULL THEN {templateID} END,
	CASE WHEN an < {anomaly} AND {kind} < {nan} THEN 'NaN'::numeric
		WHEN refund THEN (-micros)::numeric * 0.000001
		ELSE micros::numeric * 0.000001 END,
	CASE WHEN refund THEN 0 ELSE rt END,
	to_timestamp(occ),
	to_timestamp({ingested})
FROM (
	SELECT n, k, t, pc, occ, md, lt, an, rt, refund,
		CASE pc
			WHEN 0 THEN greatest(1, round(rt * round((0.2 + 3.8 * {rate} * {rate}) * 10000) * (1.0 / 36)))
			WHEN 1 THEN greatest(1, round(rt * round((0.2 + 3.8 * {rate}) * 10000) * (1.0 / 36)))
			WHEN 2 THEN round(exp({lnStorage} + {amount} * {lnStorageRange}) * 1000000)
			ELSE round(exp({lnNetwork} + {amount} * {lnNetworkRange}) * 1000000)
		END::int8 AS micros
	FROM (
		SELECT n, {ku} AS k, t, pc, occ, md, lt, an, rf < {refund} AS refund,
			CASE pc
				WHEN 0 THEN least(86400, greatest(60, round(exp({ln3600} + 1.2 * {z}))))
				WHEN 1 THEN least(36000, greatest(1, round(exp({ln600} + 1.5 * {z}))))
					* CASE WHEN k <= {W} THEN {whaleServerless} ELSE 1 END
				ELSE 0
			END::int8 AS rt
		FROM (
			SELECT n, k, t, pc, uc, {occurred} AS occ, lt, md, rf, an
			FROM (
				SELECT n, k, t, pc, {userCreated} AS uc,
					CASE WHEN t IS NOT NULL THEN {templateCreated} END AS tc,
					tm, lt, md, rf, an
				FROM (
					SELECT n, t, pc, ct,
						CASE WHEN t IS NOT NULL AND {own} < {ownShare} THEN ct ELSE k0 END AS k,
						tm, lt, md, rf, an
					FROM (
						SELECT n, k0, t, pc, CASE WHEN t IS NOT NULL THEN {creator} END AS ct, tm, lt, md, rf, an
						FROM (
							SELECT n, k0, pc, tm, lt, md, rf, an,
								CASE WHEN (pc <= 1 AND tu < {templateRows})
									OR (pc = 2 AND tu < {storageTemplate}) THEN {templateRank} END AS t
							FROM (
								SELECT n, k0, tu, tm, lt, md, rf, an,
									CASE WHEN pu < 0.15 THEN 2 WHEN pu < 0.25 THEN 3
										WHEN pu < 0.25 + (ARRAY[0.2, 0.7, 0.55]::float8[])[1 + width_bucket({focus},
											CASE WHEN k0 <= {W} THEN ARRAY[0.75, 0.9]::float8[] ELSE ARRAY[0.25, 0.5]::float8[] END)]
										THEN 0
										ELSE 1 END AS pc
								FROM (
									SELECT n, {userRank} AS k0, {pu} AS pu, {tu} AS tu, {tm} AS tm,
										{lt} AS lt, {md} AS md, {rf} AS rf, {an} AS an
									FROM generate_series($1::int8, $2::int8) AS n
									OFFSET 0) a
								OFFSET 0) b
							OFFSET 0) c
						OFFSET 0) d
					OFFSET 0) e
				OFFSET 0) f
			OFFSET 0) g
		OFFSET 0) h
	OFFSET 0) i`)
}

// fallbackUser is SQL for the row's user: k, or in day mode, when k signed up after the row
// occurred, one of the whales (old accounts).
func (p plan) fallbackUser(day *dayMode) string {
	if day == nil {
		return "k"
	}
	return fmt.Sprintf("CASE WHEN uc > occ THEN (k - 1) %% %d + 1 ELSE k END", p.whales)
}

// occurred is SQL for occurred_at (epoch seconds). A history: uniform between the latest of
// the history's start, the user's and the template's creation, and the history's end. A day:
// within the day, or within the 30 days before it for the late share.
func (p plan) occurred(day *dayMode, lateShare float64) string {
	if day == nil {
		return fmt.Sprintf("(%[2]s - (%[2]s - greatest(uc, tc, %[1]s)) * (1.0 - tm))", flt(p.startEpoch), flt(p.endEpoch))
	}
	return fmt.Sprintf("CASE WHEN lt < %s THEN %s - 2592000 + tm * 2592000 ELSE %s + tm * 86400 END",
		flt(lateShare), flt(day.epoch), flt(day.epoch))
}

// ingested is SQL for ingested_at: within 30 s to 15 min of occurred_at; late rows of a
// history 1 to 30 days later (but not after its end), late rows of a day during that day.
func (p plan) ingested(day *dayMode, lateShare float64) string {
	minutes := "(occ + 30 + md * 870)"
	if day == nil {
		return fmt.Sprintf("CASE WHEN lt < %s THEN greatest(%s, least(occ + 86400 * (1 + %s * 29), %s)) ELSE %s END",
			flt(lateShare), minutes, p.u("n", sLateDays), flt(p.endEpoch), minutes)
	}
	return fmt.Sprintf("CASE WHEN lt < %s THEN greatest(%s, %s + md * 86400) ELSE %s END",
		flt(lateShare), minutes, flt(day.epoch), minutes)
}
