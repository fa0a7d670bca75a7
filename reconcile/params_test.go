package reconcile

import (
	"strings"
	"testing"
)

func TestParamsValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Params)
		want   []string // substrings of the error; none means valid
	}{
		{"defaults", func(*Params) {}, nil},
		{"rate of 1 and 0", func(p *Params) { p.Referral.Rate, p.Template.Rate = dec("1"), dec("0") }, nil},
		{"one program enabled", func(p *Params) { p.Referral.Enabled, p.Template.Enabled = false, false }, nil},
		{"zero thresholds", func(p *Params) {
			p.Referral.MinReferrals, p.Referral.MinSpend, p.Template.MinRuntimeSeconds, p.Serverless.Threshold = 0, dec("0"), 0, dec("0")
		}, nil},
		{"referral rate above 1", func(p *Params) { p.Referral.Rate = dec("1.01") }, []string{"referral-rate", "1.01"}},
		{"negative referral rate", func(p *Params) { p.Referral.Rate = dec("-0.02") }, []string{"referral-rate"}},
		{"negative min referrals", func(p *Params) { p.Referral.MinReferrals = -1 }, []string{"referral-min-referrals", "-1"}},
		{"min spend with 3 decimals", func(p *Params) { p.Referral.MinSpend = dec("500.001") }, []string{"referral-min-spend", "cents"}},
		{"negative min spend", func(p *Params) { p.Referral.MinSpend = dec("-1") }, []string{"referral-min-spend", "negative"}},
		{"template rate above 1", func(p *Params) { p.Template.Rate = dec("2") }, []string{"template-rate"}},
		{"negative template rate", func(p *Params) { p.Template.Rate = dec("-0.01") }, []string{"template-rate"}},
		{"negative runtime minimum", func(p *Params) { p.Template.MinRuntimeSeconds = -86400 }, []string{"template-min-runtime-seconds"}},
		{"negative threshold", func(p *Params) { p.Serverless.Threshold = dec("-1000") }, []string{"serverless-threshold"}},
		{"threshold sub-cent", func(p *Params) { p.Serverless.Threshold = dec("999.995") }, []string{"serverless-threshold", "cents"}},
		{"negative referrer bonus", func(p *Params) { p.Serverless.ReferrerBonus = dec("-500") }, []string{"serverless-referrer-bonus"}},
		{"negative referred bonus", func(p *Params) { p.Serverless.ReferredBonus = dec("-0.01") }, []string{"serverless-referred-bonus"}},
		{"sub-cent bonus", func(p *Params) { p.Serverless.ReferredBonus = dec("0.001") }, []string{"serverless-referred-bonus", "cents"}},
		{"all programs disabled", func(p *Params) {
			p.Referral.Enabled, p.Template.Enabled, p.Serverless.Enabled = false, false, false
		}, []string{"programs", "at least one"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := DefaultParams()
			tt.mutate(&p)
			err := p.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: got %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: got nil, want an error naming %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate: got %q, want it to contain %q", err, w)
				}
			}
			// A single bad value gives a single error.
			if lines := strings.Count(err.Error(), "\n") + 1; lines != 1 {
				t.Errorf("Validate: got %d errors (%q), want 1", lines, err)
			}
		})
	}
}

// TestParamsValidateReportsEveryError checks that Validate does not stop at the first error.
func TestParamsValidateReportsEveryError(t *testing.T) {
	p := DefaultParams()
	p.Referral.Rate, p.Template.MinRuntimeSeconds, p.Serverless.ReferrerBonus = dec("3"), -1, dec("-1")
	err := p.Validate()
	if err == nil {
		t.Fatal("Validate: got nil, want three errors")
	}
	for _, w := range []string{"referral-rate", "template-min-runtime-seconds", "serverless-referrer-bonus"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("Validate: got %q, want it to contain %q", err, w)
		}
	}
	if lines := strings.Count(err.Error(), "\n") + 1; lines != 3 {
		t.Errorf("Validate: got %d errors (%q), want 3", lines, err)
	}
}
