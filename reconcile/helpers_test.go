package reconcile

import (
	"testing"

	"github.com/shopspring/decimal"
)

// dec parses an exact decimal literal; tests use it for every amount.
func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// wholeCents reports whether d has no digits beyond the cent.
func wholeCents(d decimal.Decimal) bool { return d.Equal(d.Truncate(2)) }

// assertDec fails the test when got and want are not equal as numbers.
func assertDec(t *testing.T, field string, got, want decimal.Decimal) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s: got %s, want %s", field, got, want)
	}
}
