package reconcile

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"math/big"

	"github.com/shopspring/decimal"
)

// MinDrawSecret is the shortest draw secret accepted, in bytes.
const MinDrawSecret = 32

// two64 is 2^64: a draw's u is its 64-bit number divided by it.
var two64 = new(big.Int).Lsh(big.NewInt(1), 64)

// Drawn is the outcome of a signup bonus draw: u in [0, 1), exactly, and the entry of the table
// it selects.
type Drawn struct {
	U     decimal.Decimal // n / 2^64, exact (at most 64 decimal places)
	N     uint64          // the first 8 bytes of the HMAC, big-endian
	Entry int             // index in the draw table
	USD   decimal.Decimal
}

// Draw draws a recipient's signup bonus from table (SPEC 8.1), deterministically from secret:
// n is the first 8 bytes, big-endian, of HMAC-SHA256(secret, "signup_bonus|<version>|<referred
// user>|<role>"), u = n / 2^64, and the amount is the first entry whose cumulative weight exceeds
// u × the total weight, compared exactly in integers. Nobody without the secret can predict it,
// and anybody with it can recompute it. table must have positive weights; with no table, only u
// is drawn (Entry -1, USD zero).
func Draw(secret []byte, versionID, referredUser, role string, table []DrawEntry) Drawn {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("signup_bonus|" + versionID + "|" + referredUser + "|" + role))
	n := binary.BigEndian.Uint64(mac.Sum(nil)[:8])
	bn := new(big.Int).SetUint64(n)
	// u = n / 2^64 = n × 5^64 / 10^64: a finite decimal.
	u := decimal.NewFromBigInt(new(big.Int).Mul(bn, new(big.Int).Exp(big.NewInt(5), big.NewInt(64), nil)), -64)
	var total int64
	for _, e := range table {
		total += e.Weight
	}
	// cumulative > u × total  ⇔  cumulative × 2^64 > n × total
	threshold := new(big.Int).Mul(bn, big.NewInt(total))
	var cumulative int64
	for i, e := range table {
		cumulative += e.Weight
		if new(big.Int).Mul(big.NewInt(cumulative), two64).Cmp(threshold) > 0 {
			return Drawn{U: u, N: n, Entry: i, USD: e.USD}
		}
	}
	// Only without a table: with positive weights u < 1, so the last cumulative weight exceeds
	// u × total.
	return Drawn{U: u, N: n, Entry: -1}
}
