package reconcile

import "strings"

// countryCodes are the 249 ISO 3166-1 alpha-2 codes officially assigned to countries (and to
// dependent territories and special areas of geographical interest, which ISO lists as
// countries), as tzdata's iso3166.tab lists them, current as of ISO/TC 46 N1108 (2023-04-05).
//
// Left out on purpose: user-assigned codes (AA, QM to QZ, XA to XZ, ZZ), among them XK, which the
// European Commission and others use for Kosovo but which ISO has not assigned; exceptionally
// reserved codes (EU, UK, UN, ...), which are not countries; and withdrawn ones (AN, CS, YU, ...).
// A signup bonus treats a recipient with any of those as of unknown country (SPEC 8.1).
const countryCodes = `
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ
BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR
CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR
GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU
ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ
LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF
PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI
SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR
TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
`

// countries is the set of countryCodes.
var countries = func() map[string]bool {
	set := map[string]bool{}
	for _, code := range strings.Fields(countryCodes) {
		set[code] = true
	}
	return set
}()

// IsCountry reports whether code is an ISO 3166-1 alpha-2 code officially assigned to a country,
// exactly as written: two upper-case letters (DE, not de or " DE"). XK (Kosovo, user-assigned),
// EU, UK, ZZ and XX are not.
func IsCountry(code string) bool { return countries[code] }

// NormalizeCountry reads a user's country as SPEC 8.1 compares it: trimmed of white space and
// upper-cased. It returns that code, and known false when the code is empty or not one IsCountry
// accepts (ZZ, XX, EU, XK, three letters, digits), which a signup bonus treats as an unknown
// country. Only ASCII letters are upper-cased: a letter such as the dotless ı or the long ſ, which
// Unicode upper-cases to I and S, never turns a string into a code ("ıt" is not IT).
func NormalizeCountry(s string) (code string, known bool) {
	code = strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' {
			return r - 'a' + 'A'
		}
		return r
	}, strings.TrimSpace(s))
	return code, IsCountry(code)
}
