package reconcile

import (
	"strings"
	"testing"
)

func TestIsCountry(t *testing.T) {
	tests := []struct {
		code string
		want bool
	}{
		{"DE", true},
		{"FR", true},
		{"GB", true},
		{"NO", true},
		{"CH", true},
		{"US", true},
		{"AX", true}, // Åland: a special area ISO lists as a country
		{"SS", true}, // South Sudan, assigned 2011
		{"BQ", true},
		{"ZW", true},
		{"AD", true},  // the first code
		{"XK", false}, // Kosovo: user-assigned, not by ISO
		{"EU", false}, // exceptionally reserved: not a country
		{"UK", false}, // exceptionally reserved: the United Kingdom is GB
		{"ZZ", false}, // user-assigned: "unknown"
		{"XX", false},
		{"AA", false},
		{"QZ", false},
		{"AN", false}, // Netherlands Antilles: withdrawn 2010
		{"YU", false}, // Yugoslavia: withdrawn
		{"de", false}, // exactly as written: NormalizeCountry upper-cases
		{"De", false},
		{" DE", false},
		{"DEU", false}, // alpha-3
		{"D", false},
		{"", false},
		{"12", false},
		{"D1", false},
		{"ÄÖ", false},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			if got := IsCountry(tt.code); got != tt.want {
				t.Errorf("IsCountry(%q) = %t, want %t", tt.code, got, tt.want)
			}
		})
	}
}

// TestCountryCount counts every pair of letters: ISO 3166-1 assigns 249 of them to countries.
func TestCountryCount(t *testing.T) {
	n := 0
	for a := 'A'; a <= 'Z'; a++ {
		for b := 'A'; b <= 'Z'; b++ {
			if IsCountry(string([]rune{a, b})) {
				n++
			}
		}
	}
	if n != 249 {
		t.Errorf("IsCountry accepts %d codes, want 249", n)
	}
	if got := len(strings.Fields(countryCodes)); got != 249 {
		t.Errorf("countryCodes lists %d codes, want 249 (a duplicate?)", got)
	}
}

func TestNormalizeCountry(t *testing.T) {
	tests := []struct {
		in        string
		wantCode  string
		wantKnown bool
	}{
		{"DE", "DE", true},
		{"de", "DE", true},
		{" fr\n", "FR", true},
		{"\tGb ", "GB", true},
		{"", "", false},
		{"   ", "", false},
		{"zz", "ZZ", false},
		{"xx", "XX", false},
		{"eu", "EU", false},
		{"xk", "XK", false},
		{"deu", "DEU", false},
		{"12", "12", false},
		{"D E", "D E", false},
		{"\u00a0it\u3000", "IT", true}, // Unicode white space is trimmed
		{"\u0131t", "\u0131T", false},  // dotless ı is not i: only ASCII letters are upper-cased
		{"\u017fe", "\u017fE", false},  // long ſ is not s
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			code, known := NormalizeCountry(tt.in)
			if code != tt.wantCode || known != tt.wantKnown {
				t.Errorf("NormalizeCountry(%q) = %q, %t; want %q, %t", tt.in, code, known, tt.wantCode, tt.wantKnown)
			}
		})
	}
}
