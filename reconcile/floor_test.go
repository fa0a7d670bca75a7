package reconcile

import (
	"testing"
)

func TestFloorToCent(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"zero", "0", "0.00"},
		{"positive sub-cent", "0.009", "0.00"},
		{"positive", "12.345", "12.34"},
		{"exact cents", "40.00", "40.00"},
		{"exact cents one decimal", "40.1", "40.10"},
		{"integer", "7", "7.00"},
		{"seed template earnings", "18.144", "18.14"},
		{"almost three cents", "0.0299999", "0.02"},
		{"many decimals", "1.23456789012345678901", "1.23"},
		{"just below a cent", "0.0099999999999999999999", "0.00"},
		{"negative sub-cent floors towards -inf", "-0.001", "-0.01"},
		{"negative", "-12.341", "-12.35"},
		{"negative exact cents", "-5.55", "-5.55"},
		{"large", "123456789012345678901234567.899", "123456789012345678901234567.89"},
		{"large negative", "-98765432109876543210.001", "-98765432109876543210.01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := FloorToCent(dec(tt.in))
			if !got.Equal(dec(tt.want)) {
				t.Errorf("FloorToCent(%s): got %s, want %s", tt.in, got, tt.want)
			}
			if !wholeCents(got) || got.Exponent() < -2 {
				t.Errorf("FloorToCent(%s) = %s (exponent %d): got more than 2 decimals", tt.in, got, got.Exponent())
			}
			if got.StringFixed(2) != tt.want {
				t.Errorf("FloorToCent(%s).StringFixed(2): got %s, want %s", tt.in, got.StringFixed(2), tt.want)
			}
			if got.GreaterThan(dec(tt.in)) {
				t.Errorf("FloorToCent(%s): got %s, above its input", tt.in, got)
			}
		})
	}
}
