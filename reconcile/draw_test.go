package reconcile

import (
	"fmt"
	"math/big"
	"testing"
)

// The draw's known answers were computed apart from this package, with Python 3.11's hmac and
// fractions (exact rationals, no float):
//
//	import hmac, hashlib
//	from fractions import Fraction
//	def draw(secret, version, user, role, table):  # table: [(usd, weight), ...]
//	    msg = f"signup_bonus|{version}|{user}|{role}".encode("utf-8")
//	    n = int.from_bytes(hmac.new(secret, msg, hashlib.sha256).digest()[:8], "big")
//	    u = Fraction(n, 2**64)
//	    total, cum = sum(w for _, w in table), 0
//	    for i, (usd, w) in enumerate(table):
//	        cum += w
//	        if cum > u * total:
//	            return n, u, i, usd
//
// and u written out exactly as the decimal n × 5^64 / 10^64.
var (
	secret1 = []byte("creditrecon-draw-secret-for-tests-0001")
	secret2 = []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31}
	secret3 = []byte("another secret, exactly 32 bytes")
)

// runpodDraw is the draw table of terms/runpod-2025.yaml: 85% get 5.00, 96% at most 10.00.
var runpodDraw = []DrawEntry{
	{USD: dec("5.00"), Weight: 8500},
	{USD: dec("10.00"), Weight: 1100},
	{USD: dec("25.00"), Weight: 250},
	{USD: dec("50.00"), Weight: 100},
	{USD: dec("100.00"), Weight: 40},
	{USD: dec("500.00"), Weight: 10},
}

func TestDrawKnownAnswers(t *testing.T) {
	table := func(weights ...int64) []DrawEntry {
		out := make([]DrawEntry, len(weights))
		for i, w := range weights {
			out[i] = DrawEntry{USD: dec(fmt.Sprintf("%d.00", i+1)), Weight: w}
		}
		return out
	}
	tests := []struct {
		name                string
		secret              []byte
		version, user, role string
		table               []DrawEntry
		wantN               uint64
		wantU               string
		wantEntry           int
		wantUSD             string
	}{
		{"referrer", secret1, "runpod-2025-06", "user_1", "referrer", runpodDraw,
			7317516532543267405, "0.3966833660891002963475200637777362544511561281979084014892578125", 0, "5"},
		{"the same referral's referred user draws apart", secret1, "runpod-2025-06", "user_1", "referred", runpodDraw,
			12577125452654017066, "0.681807336969510932090689225848478827174403704702854156494140625", 0, "5"},
		{"binary secret", secret2, "runpod-2025-06", "u-42", "referred", runpodDraw,
			15000283497713730902, "0.813166997805984411384037924275247632976970635354518890380859375", 0, "5"},
		{"another version, a user id in UTF-8", secret3, "bonus-2026", "usr_\u00e9t\u00e9", "referrer", runpodDraw,
			15091097851868732979, "0.8180900538093704737921223191232655835847253911197185516357421875", 0, "5"},
		{"equal weights", secret3, "bonus-2026", "usr_\u00e9t\u00e9", "referred", table(1, 1, 1),
			14426101547836923426, "0.782040531933064527359174278320352868831832893192768096923828125", 2, "3"},
		{"one entry, empty user id", secret2, "v1", "", "referrer", table(1),
			13440005109755168794, "0.728584136910641723427518867683971848236978985369205474853515625", 0, "1"},
		// The first of user_0, user_1, ... to draw each entry of RunPod's table.
		{"10.00", secret1, "runpod-2025-06", "user_21", "referred", runpodDraw,
			17608578743775127568, "0.954562966419153392273744263007984045543707907199859619140625", 1, "10"},
		{"25.00", secret1, "runpod-2025-06", "user_2", "referred", runpodDraw,
			17854883260294957188, "0.96791516101434294677176295440546027748496271669864654541015625", 2, "25"},
		{"50.00", secret1, "runpod-2025-06", "user_59", "referred", runpodDraw,
			18259206127976243045, "0.9898335475906239105188706706162093951206770725548267364501953125", 3, "50"},
		{"100.00", secret1, "runpod-2025-06", "user_8", "referred", runpodDraw,
			18357533674642177674, "0.995163894576142717672030679754158200012170709669589996337890625", 4, "100"},
		{"500.00", secret1, "runpod-2025-06", "user_284", "referred", runpodDraw,
			18445980710883794729, "0.9999586180182959854766990004382165579954744316637516021728515625", 5, "500"},
		// Of user_0 to user_1999999, the u closest to the 85% boundary of RunPod's table:
		// 1.6e-7 below it.
		{"just below 85%", secret2, "runpod-2025-06", "user_1422631", "referrer", runpodDraw,
			15679729451426607547, "0.8499998367610837286876927787471203146196785382926464080810546875", 0, "5"},
		// Tables built from the continued fraction of u = n / 2^64 of the first case, so that u ×
		// total lands within 1e-11 of the first cumulative weight: only exact arithmetic gets them
		// right. 127797235695 < u × 322164342193 by 1.6e-13: entry 1.
		{"a hair above a boundary", secret1, "runpod-2025-06", "user_1", "referrer", table(127797235695, 194367106498),
			7317516532543267405, "0.3966833660891002963475200637777362544511561281979084014892578125", 1, "2"},
		// 53313214057 > u × 134397402600 by 3.0e-12: entry 0, where float64(n) / 2^64 × total
		// gives exactly 53313214057.0, and so entry 1.
		{"a hair below a boundary", secret1, "runpod-2025-06", "user_1", "referrer", table(53313214057, 81084188543),
			7317516532543267405, "0.3966833660891002963475200637777362544511561281979084014892578125", 0, "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Draw(tt.secret, tt.version, tt.user, tt.role, tt.table)
			if got.N != tt.wantN || got.U.String() != tt.wantU || got.Entry != tt.wantEntry || !got.USD.Equal(dec(tt.wantUSD)) {
				t.Errorf("Draw(%s, %q, %q, %q):\ngot  N %d, U %s, entry %d, %s USD\nwant N %d, U %s, entry %d, %s USD",
					tt.name, tt.version, tt.user, tt.role, got.N, got.U, got.Entry, got.USD, tt.wantN, tt.wantU, tt.wantEntry, tt.wantUSD)
			}
			// U is N / 2^64 exactly.
			r := new(big.Rat).SetFrac(new(big.Int).SetUint64(got.N), two64)
			if got.U.Rat().Cmp(r) != 0 {
				t.Errorf("U %s is not N / 2^64 = %s", got.U, r.FloatString(70))
			}
		})
	}
}

// TestDrawFollowsTheTable checks that 10,000 draws under one secret (referred users user_0 to
// user_9999 of runpod-2025-06) follow RunPod's table, with Pearson's chi-square goodness-of-fit
// test. The draws are a function of the secret, so the test is deterministic: it cannot fail by
// chance, only if the draw stops following the table. The counts are also the known answer of
// the Python above.
func TestDrawFollowsTheTable(t *testing.T) {
	const draws = 10000
	// The 0.999 quantile of the chi-square distribution with 5 degrees of freedom (6 entries - 1):
	// 20.515, NIST/SEMATECH e-Handbook of Statistical Methods, 1.3.6.7.4 "Critical Values of the
	// Chi-Square Distribution" (upper tail 0.001, ν = 5); the closed form for 5 degrees of freedom,
	// erfc(√(x/2)) + √(2x/π)·e^(−x/2)·(1 + x/3), gives 0.0010000 at x = 20.515.
	const critical = 20.515
	counts := make([]int, len(runpodDraw))
	for i := range draws {
		counts[Draw(secret1, "runpod-2025-06", fmt.Sprintf("user_%d", i), "referred", runpodDraw).Entry]++
	}
	var total int64
	for _, e := range runpodDraw {
		total += e.Weight
	}
	var stat float64
	for i, e := range runpodDraw {
		expected := float64(draws) * float64(e.Weight) / float64(total)
		d := float64(counts[i]) - expected
		stat += d * d / expected
	}
	t.Logf("counts %v, chi-square %.4f (5 degrees of freedom; critical value at 0.999: %.3f)", counts, stat, critical)
	if stat >= critical {
		t.Errorf("chi-square %.4f >= %.3f: the draws %v do not follow the table's weights", stat, critical, counts)
	}
	// Python: [8486, 1082, 269, 104, 49, 10], chi-square 147603/37400 = 3.9466 (p = 0.557).
	if want := []int{8486, 1082, 269, 104, 49, 10}; fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("counts %v, want %v", counts, want)
	}
}
