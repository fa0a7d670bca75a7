package reconcile

import (
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

var asOf = time.Date(2025, 3, 2, 0, 0, 0, 0, time.UTC)

// want is the part of a Decision a test checks; amounts are decimal literals, "" meaning zero.
type want struct {
	eligible                                bool
	status                                  string
	earned, target, owed, clawback, granted string
	reason                                  string // substring of Reason, when set
}

func orZero(s string) decimal.Decimal {
	if s == "" {
		return decimal.Zero
	}
	return dec(s)
}

func checkDecision(t *testing.T, d Decision, w want) {
	t.Helper()
	if d.Eligible != w.eligible {
		t.Errorf("Eligible: got %v, want %v (reason %q)", d.Eligible, w.eligible, d.Reason)
	}
	if d.Status != w.status {
		t.Errorf("Status: got %q, want %q", d.Status, w.status)
	}
	assertDec(t, "Earned", d.Earned, orZero(w.earned))
	assertDec(t, "Target", d.Target, orZero(w.target))
	assertDec(t, "Owed", d.Owed, orZero(w.owed))
	assertDec(t, "ClawbackDue", d.ClawbackDue, orZero(w.clawback))
	assertDec(t, "Granted", d.Granted, orZero(w.granted))
	if w.reason != "" && !strings.Contains(d.Reason, w.reason) {
		t.Errorf("Reason: got %q, want it to mention %q", d.Reason, w.reason)
	}
	if d.Owed.IsNegative() || d.ClawbackDue.IsNegative() {
		t.Errorf("Owed %s, ClawbackDue %s: got a negative amount", d.Owed, d.ClawbackDue)
	}
	if d.Owed.IsPositive() && d.ClawbackDue.IsPositive() {
		t.Errorf("Owed %s and ClawbackDue %s: got both positive", d.Owed, d.ClawbackDue)
	}
	if !wholeCents(d.Owed) || !wholeCents(d.Target) {
		t.Errorf("Owed %s, Target %s: got more than 2 decimals", d.Owed, d.Target)
	}
	g, ok := d.Grant(asOf)
	if ok != d.Owed.IsPositive() {
		t.Errorf("Grant ok: got %v, want %v (owed %s)", ok, d.Owed.IsPositive(), d.Owed)
	}
	if ok && !g.Amount.Equal(d.Owed) {
		t.Errorf("Grant.Amount: got %s, want owed %s", g.Amount, d.Owed)
	}
}

func TestEvaluateReferrer(t *testing.T) {
	p := DefaultParams()
	tests := []struct {
		name   string
		params func(*Params)
		in     ReferrerTotals
		want   want
	}{
		{
			name: "seed: 20 referrals x $100 accrue $40 but are not eligible",
			in:   ReferrerTotals{ReferrerID: "r1", Referrals: 20, Spend: dec("2000.00"), Accepted: true},
			want: want{status: StatusAccrued, earned: "40", reason: "referrals"},
		},
		{
			name: "seed: 20 referrals, not accepted, reason names both",
			in:   ReferrerTotals{ReferrerID: "r1", Referrals: 20, Spend: dec("2000.00")},
			want: want{status: StatusAccrued, earned: "40", reason: "20 referrals, needs 25"},
		},
		{
			name: "seed: 25 referrals, accepted, spend 2500",
			in:   ReferrerTotals{ReferrerID: "r1", Referrals: 25, Spend: dec("2500.00"), Accepted: true},
			want: want{eligible: true, status: StatusGranted, earned: "50", target: "50.00", owed: "50.00"},
		},
		{
			name: "exactly 25 referrals is eligible",
			in:   ReferrerTotals{ReferrerID: "r1", Referrals: 25, Spend: dec("1000"), Accepted: true},
			want: want{eligible: true, status: StatusGranted, earned: "20", target: "20", owed: "20"},
		},
		{
			name: "24 referrals is not",
			in:   ReferrerTotals{ReferrerID: "r1", Referrals: 24, Spend: dec("1000"), Accepted: true},
			want: want{status: StatusAccrued, earned: "20", reason: "24 referrals, needs 25"},
		},
		{
			name: "exactly 500.00 spend is eligible",
			in:   ReferrerTotals{ReferrerID: "r1", Referrals: 30, Spend: dec("500.00"), Accepted: true},
			want: want{eligible: true, status: StatusGranted, earned: "10", target: "10", owed: "10"},
		},
		{
			name: "499.99 spend is not",
			in:   ReferrerTotals{ReferrerID: "r1", Referrals: 30, Spend: dec("499.99"), Accepted: true},
			want: want{status: StatusAccrued, earned: "9.9998", reason: "referral spend 499.99, needs 500.00"},
		},
		{
			name: "not accepted is not eligible above every threshold",
			in:   ReferrerTotals{ReferrerID: "r1", Referrals: 1000, Spend: dec("1000000"), Accepted: false},
			want: want{status: StatusAccrued, earned: "20000", reason: "accepted"},
		},
		{
			name: "sub-cent earnings floor",
			in:   ReferrerTotals{ReferrerID: "r1", Referrals: 25, Spend: dec("1234.5678"), Accepted: true},
			want: want{eligible: true, status: StatusGranted, earned: "24.691356", target: "24.69", owed: "24.69"},
		},
		{
			name: "cumulative: granted 40.00, target 45.55",
			in:   ReferrerTotals{ReferrerID: "r1", Referrals: 25, Spend: dec("2277.50"), Accepted: true, Granted: dec("40.00")},
			want: want{eligible: true, status: StatusGranted, earned: "45.55", target: "45.55", owed: "5.55", granted: "40.00"},
		},
		{
			name: "cumulative: granted equals target owes nothing",
			in:   ReferrerTotals{ReferrerID: "r1", Referrals: 25, Spend: dec("2277.50"), Accepted: true, Granted: dec("45.55")},
			want: want{eligible: true, status: StatusGranted, earned: "45.55", target: "45.55", granted: "45.55"},
		},
		{
			name: "cumulative: sub-cent growth owes nothing yet",
			in:   ReferrerTotals{ReferrerID: "r1", Referrals: 25, Spend: dec("2277.99"), Accepted: true, Granted: dec("45.55")},
			want: want{eligible: true, status: StatusGranted, earned: "45.5598", target: "45.55", granted: "45.55"},
		},
		{
			name: "eligibility lost to refunds after a grant: only the refunded earnings are due back",
			in:   ReferrerTotals{ReferrerID: "r", Referrals: 25, Accepted: true, Spend: dec("450.00"), Granted: dec("12.00")},
			want: want{status: StatusClawback, earned: "9", clawback: "3.00", granted: "12.00", reason: "referral spend 450.00"},
		},
		{
			name: "refund: granted above target is a clawback",
			in:   ReferrerTotals{ReferrerID: "r1", Referrals: 25, Spend: dec("2000.00"), Accepted: true, Granted: dec("45.55")},
			want: want{eligible: true, status: StatusClawback, earned: "40", target: "40", clawback: "5.55", granted: "45.55", reason: "refunds"},
		},
		{
			name:   "negative earned never gives a negative target",
			params: func(p *Params) { p.Referral.MinSpend = decimal.Zero },
			in:     ReferrerTotals{ReferrerID: "r1", Referrals: 25, Spend: dec("-100.00"), Accepted: true},
			want:   want{status: StatusAccrued, earned: "-2", reason: "referral spend -100.00"},
		},
		{
			name:   "negative earned with grants is a clawback of all of them",
			params: func(p *Params) { p.Referral.MinSpend = decimal.Zero },
			in:     ReferrerTotals{ReferrerID: "r1", Referrals: 25, Spend: dec("-100.00"), Accepted: true, Granted: dec("3.00")},
			want:   want{status: StatusClawback, earned: "-2", clawback: "3.00", granted: "3.00"},
		},
		{
			name:   "rate 0: eligible, nothing earned",
			params: func(p *Params) { p.Referral.Rate = decimal.Zero },
			in:     ReferrerTotals{ReferrerID: "r1", Referrals: 25, Spend: dec("2500.00"), Accepted: true},
			want:   want{eligible: true, status: StatusGranted},
		},
		{
			name:   "disabled program owes nothing",
			params: func(p *Params) { p.Referral.Enabled = false },
			in:     ReferrerTotals{ReferrerID: "r1", Referrals: 25, Spend: dec("2500.00"), Accepted: true},
			want:   want{status: StatusDisabled, earned: "50", reason: "disabled"},
		},
		{
			name:   "disabled program claws nothing back",
			params: func(p *Params) { p.Referral.Enabled = false },
			in:     ReferrerTotals{ReferrerID: "r1", Referrals: 25, Spend: dec("100.00"), Accepted: true, Granted: dec("50.00")},
			want:   want{status: StatusDisabled, earned: "2", granted: "50.00", reason: "disabled"},
		},
		{
			name: "custom rate and thresholds",
			params: func(p *Params) {
				p.Referral.Rate, p.Referral.MinReferrals, p.Referral.MinSpend = dec("0.05"), 1, dec("0")
			},
			in:   ReferrerTotals{ReferrerID: "r1", Referrals: 1, Spend: dec("0.99"), Accepted: true},
			want: want{eligible: true, status: StatusGranted, earned: "0.0495", target: "0.04", owed: "0.04"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := p
			if tt.params != nil {
				tt.params(&p)
			}
			d := p.EvaluateReferrer(tt.in)
			checkDecision(t, d, tt.want)
			if d.Program != Referral || d.AccountID != tt.in.ReferrerID || d.BeneficiaryID != tt.in.ReferrerID {
				t.Errorf("Program/AccountID/BeneficiaryID: got %s/%s/%s, want %s/%s/%s",
					d.Program, d.AccountID, d.BeneficiaryID, Referral, tt.in.ReferrerID, tt.in.ReferrerID)
			}
			assertDec(t, "Spend", d.Spend, tt.in.Spend)
		})
	}
}

// TestEvaluateReferrerAcceptedLater shows that earnings made before acceptance are kept: the
// first grant after acceptance is the whole floor(earned), pre-acceptance spend included.
func TestEvaluateReferrerAcceptedLater(t *testing.T) {
	p := DefaultParams()
	before := p.EvaluateReferrer(ReferrerTotals{ReferrerID: "r1", Referrals: 30, Spend: dec("1000.00")})
	checkDecision(t, before, want{status: StatusAccrued, earned: "20", reason: "accepted"})

	after := p.EvaluateReferrer(ReferrerTotals{ReferrerID: "r1", Referrals: 30, Spend: dec("1200.00"), Accepted: true, Granted: before.Owed})
	checkDecision(t, after, want{eligible: true, status: StatusGranted, earned: "24", target: "24.00", owed: "24.00"})
}

func TestEvaluateTemplate(t *testing.T) {
	seedSpend := dec("0.54").Mul(decimal.NewFromInt(20 * 168)) // 1814.40
	week := int64(20 * 168 * 3600)
	tests := []struct {
		name   string
		params func(*Params)
		in     TemplateTotals
		want   want
	}{
		{
			name: "seed: 20 users x $0.54/h x 168 h",
			in:   TemplateTotals{TemplateID: "tpl", CreatorID: "alice", RuntimeSeconds: week, Spend: seedSpend},
			want: want{eligible: true, status: StatusGranted, earned: "18.144", target: "18.14", owed: "18.14"},
		},
		{
			name: "seed: granted 18.14, the 0.004 remainder carries",
			in:   TemplateTotals{TemplateID: "tpl", CreatorID: "alice", RuntimeSeconds: week, Spend: seedSpend, Granted: dec("18.14")},
			want: want{eligible: true, status: StatusGranted, earned: "18.144", target: "18.14", granted: "18.14"},
		},
		{
			name: "seed: 0.60 more spend owes exactly 0.01",
			in:   TemplateTotals{TemplateID: "tpl", CreatorID: "alice", RuntimeSeconds: week + 3600, Spend: seedSpend.Add(dec("0.60")), Granted: dec("18.14")},
			want: want{eligible: true, status: StatusGranted, earned: "18.15", target: "18.15", owed: "0.01", granted: "18.14"},
		},
		{
			name: "exactly 86400 runtime seconds is eligible",
			in:   TemplateTotals{TemplateID: "tpl", CreatorID: "alice", RuntimeSeconds: 86400, Spend: dec("12.96")},
			want: want{eligible: true, status: StatusGranted, earned: "0.1296", target: "0.12", owed: "0.12"},
		},
		{
			name: "86399 runtime seconds is not",
			in:   TemplateTotals{TemplateID: "tpl", CreatorID: "alice", RuntimeSeconds: 86399, Spend: dec("12.96")},
			want: want{status: StatusAccrued, earned: "0.1296", reason: "86399 runtime seconds, needs 86400"},
		},
		{
			name: "refund: granted above target is a clawback",
			in:   TemplateTotals{TemplateID: "tpl", CreatorID: "alice", RuntimeSeconds: week, Spend: dec("1000.00"), Granted: dec("18.14")},
			want: want{eligible: true, status: StatusClawback, earned: "10", target: "10", clawback: "8.14", granted: "18.14"},
		},
		{
			name: "negative earned: target 0, no negative grant",
			in:   TemplateTotals{TemplateID: "tpl", CreatorID: "alice", RuntimeSeconds: week, Spend: dec("-50.00")},
			want: want{eligible: true, status: StatusGranted, earned: "-0.5"},
		},
		{
			name: "negative earned with grants: clawback",
			in:   TemplateTotals{TemplateID: "tpl", CreatorID: "alice", RuntimeSeconds: week, Spend: dec("-50.00"), Granted: dec("1.00")},
			want: want{eligible: true, status: StatusClawback, earned: "-0.5", clawback: "1.00", granted: "1.00"},
		},
		{
			name:   "disabled program owes nothing and claws nothing back",
			params: func(p *Params) { p.Template.Enabled = false },
			in:     TemplateTotals{TemplateID: "tpl", CreatorID: "alice", RuntimeSeconds: week, Spend: dec("10.00"), Granted: dec("18.14")},
			want:   want{status: StatusDisabled, earned: "0.1", granted: "18.14", reason: "disabled"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := DefaultParams()
			if tt.params != nil {
				tt.params(&p)
			}
			d := p.EvaluateTemplate(tt.in)
			checkDecision(t, d, tt.want)
			if d.Program != Template || d.AccountID != tt.in.TemplateID || d.TemplateID != tt.in.TemplateID || d.BeneficiaryID != tt.in.CreatorID {
				t.Errorf("Program/AccountID/TemplateID/BeneficiaryID: got %s/%s/%s/%s, want %s/%s/%s/%s",
					d.Program, d.AccountID, d.TemplateID, d.BeneficiaryID, Template, tt.in.TemplateID, tt.in.TemplateID, tt.in.CreatorID)
			}
		})
	}
}

func TestEvaluateServerless(t *testing.T) {
	tests := []struct {
		name               string
		params             func(*Params)
		in                 ServerlessTotals
		referrer, referred want
	}{
		{
			name:     "seed: 1000.00 of serverless spend grants 500 + 500",
			in:       ServerlessTotals{ReferredUserID: "u1", ReferrerID: "r1", Spend: dec("1000.00")},
			referrer: want{eligible: true, status: StatusGranted, earned: "500", target: "500", owed: "500.00"},
			referred: want{eligible: true, status: StatusGranted, earned: "500", target: "500", owed: "500.00"},
		},
		{
			name:     "999.99 is pending",
			in:       ServerlessTotals{ReferredUserID: "u1", ReferrerID: "r1", Spend: dec("999.99")},
			referrer: want{status: StatusPending, reason: "999.99, needs 1000.00"},
			referred: want{status: StatusPending, reason: "999.99, needs 1000.00"},
		},
		{
			name:     "already granted: nothing more, ever",
			in:       ServerlessTotals{ReferredUserID: "u1", ReferrerID: "r1", Spend: dec("5000"), GrantedReferrer: dec("500"), GrantedReferred: dec("500")},
			referrer: want{eligible: true, status: StatusGranted, earned: "500", target: "500", granted: "500"},
			referred: want{eligible: true, status: StatusGranted, earned: "500", target: "500", granted: "500"},
		},
		{
			name:     "one role granted, the other still owed",
			in:       ServerlessTotals{ReferredUserID: "u1", ReferrerID: "r1", Spend: dec("1000"), GrantedReferrer: dec("500")},
			referrer: want{eligible: true, status: StatusGranted, earned: "500", target: "500", granted: "500"},
			referred: want{eligible: true, status: StatusGranted, earned: "500", target: "500", owed: "500"},
		},
		{
			name:     "refunds under the threshold never revoke the bonus",
			in:       ServerlessTotals{ReferredUserID: "u1", ReferrerID: "r1", Spend: dec("10.00"), GrantedReferrer: dec("500"), GrantedReferred: dec("500")},
			referrer: want{status: StatusRefunded, granted: "500", reason: "refunds"},
			referred: want{status: StatusRefunded, granted: "500", reason: "refunds"},
		},
		{
			name:     "negative spend after the bonus",
			in:       ServerlessTotals{ReferredUserID: "u1", ReferrerID: "r1", Spend: dec("-1500.00"), GrantedReferrer: dec("500"), GrantedReferred: dec("500")},
			referrer: want{status: StatusRefunded, granted: "500"},
			referred: want{status: StatusRefunded, granted: "500"},
		},
		{
			name:     "disabled: nothing owed",
			params:   func(p *Params) { p.Serverless.Enabled = false },
			in:       ServerlessTotals{ReferredUserID: "u1", ReferrerID: "r1", Spend: dec("5000")},
			referrer: want{status: StatusDisabled, reason: "disabled"},
			referred: want{status: StatusDisabled, reason: "disabled"},
		},
		{
			name:     "disabled: granted bonuses stay",
			params:   func(p *Params) { p.Serverless.Enabled = false },
			in:       ServerlessTotals{ReferredUserID: "u1", ReferrerID: "r1", Spend: dec("5000"), GrantedReferrer: dec("500"), GrantedReferred: dec("500")},
			referrer: want{status: StatusDisabled, granted: "500", reason: "disabled"},
			referred: want{status: StatusDisabled, granted: "500", reason: "disabled"},
		},
		{
			name:     "different bonuses per role",
			params:   func(p *Params) { p.Serverless.ReferrerBonus, p.Serverless.ReferredBonus = dec("250.00"), dec("100.00") },
			in:       ServerlessTotals{ReferredUserID: "u1", ReferrerID: "r1", Spend: dec("1000")},
			referrer: want{eligible: true, status: StatusGranted, earned: "250", target: "250", owed: "250"},
			referred: want{eligible: true, status: StatusGranted, earned: "100", target: "100", owed: "100"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := DefaultParams()
			if tt.params != nil {
				tt.params(&p)
			}
			ds := p.EvaluateServerless(tt.in)
			roles := []struct {
				role, beneficiary string
				want              want
			}{
				{RoleReferrer, tt.in.ReferrerID, tt.referrer},
				{RoleReferred, tt.in.ReferredUserID, tt.referred},
			}
			for i, r := range roles {
				d := ds[i]
				t.Run(r.role, func(t *testing.T) {
					checkDecision(t, d, r.want)
					if d.Program != ServerlessReferral || d.Role != r.role || d.AccountID != tt.in.ReferredUserID ||
						d.ReferredUser != tt.in.ReferredUserID || d.BeneficiaryID != r.beneficiary {
						t.Errorf("Program/Role/AccountID/ReferredUser/BeneficiaryID: got %s/%s/%s/%s/%s, want %s/%s/%s/%s/%s",
							d.Program, d.Role, d.AccountID, d.ReferredUser, d.BeneficiaryID,
							ServerlessReferral, r.role, tt.in.ReferredUserID, tt.in.ReferredUserID, r.beneficiary)
					}
				})
			}
		})
	}
}

func TestEvaluateServerlessKeysDifferByRole(t *testing.T) {
	ds := DefaultParams().EvaluateServerless(ServerlessTotals{ReferredUserID: "u1", ReferrerID: "r1", Spend: dec("1000.00")})
	var keys [2]string
	for i, d := range ds {
		g, ok := d.Grant(asOf)
		if !ok {
			t.Fatalf("%s: got no grant, want 500.00", d.Role)
		}
		keys[i] = g.IdempotencyKey
	}
	wantKeys := [2]string{"serverless_referral:u1/referrer:0.00", "serverless_referral:u1/referred:0.00"}
	if keys != wantKeys {
		t.Errorf("keys: got %q, want %q", keys, wantKeys)
	}
}

func TestDecisionGrant(t *testing.T) {
	p := DefaultParams()
	ref := p.EvaluateReferrer(ReferrerTotals{ReferrerID: "r1", Referrals: 25, Spend: dec("2277.50"), Accepted: true, Granted: dec("40.00")})
	tpl := p.EvaluateTemplate(TemplateTotals{TemplateID: "tpl,1", CreatorID: "alice", RuntimeSeconds: 90000, Spend: dec("1814.40")})
	svl := p.EvaluateServerless(ServerlessTotals{ReferredUserID: "u1", ReferrerID: "r1", Spend: dec("1200")})
	tests := []struct {
		name string
		d    Decision
		want Grant
	}{
		{"referral", ref, Grant{
			IdempotencyKey: "referral:r1:40.00", Program: Referral, AccountID: "r1", BeneficiaryID: "r1",
			Amount: dec("5.55"), GrantedBefore: dec("40.00"), Spend: dec("2277.50"), Earned: dec("45.55"), AsOf: asOf,
		}},
		{"template", tpl, Grant{
			IdempotencyKey: "template:tpl%2C1:0.00", Program: Template, AccountID: "tpl,1", BeneficiaryID: "alice", TemplateID: "tpl,1",
			Amount: dec("18.14"), GrantedBefore: decimal.Zero, Spend: dec("1814.40"), Earned: dec("18.144"), AsOf: asOf,
		}},
		{"serverless referrer", svl[0], Grant{
			IdempotencyKey: "serverless_referral:u1/referrer:0.00", Program: ServerlessReferral, AccountID: "u1", BeneficiaryID: "r1",
			ReferredUser: "u1", Role: RoleReferrer,
			Amount: dec("500"), GrantedBefore: decimal.Zero, Spend: dec("1200"), Earned: dec("500"), AsOf: asOf,
		}},
		{"serverless referred", svl[1], Grant{
			IdempotencyKey: "serverless_referral:u1/referred:0.00", Program: ServerlessReferral, AccountID: "u1", BeneficiaryID: "u1",
			ReferredUser: "u1", Role: RoleReferred,
			Amount: dec("500"), GrantedBefore: decimal.Zero, Spend: dec("1200"), Earned: dec("500"), AsOf: asOf,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.d.Grant(asOf)
			if !ok {
				t.Fatalf("Grant: got ok=false, want a grant of %s", tt.want.Amount)
			}
			if !grantsEqual(got, tt.want) {
				t.Errorf("Grant:\ngot  %+v\nwant %+v", got, tt.want)
			}
		})
	}

	t.Run("nothing owed", func(t *testing.T) {
		for _, d := range []Decision{
			p.EvaluateReferrer(ReferrerTotals{ReferrerID: "r1", Referrals: 25, Spend: dec("2277.50"), Accepted: true, Granted: dec("45.55")}),
			p.EvaluateReferrer(ReferrerTotals{ReferrerID: "r1", Referrals: 25, Spend: dec("2000"), Accepted: true, Granted: dec("45.55")}),
			p.EvaluateReferrer(ReferrerTotals{ReferrerID: "r1", Referrals: 2, Spend: dec("2000"), Accepted: true}),
			{Owed: dec("-1")},
			{},
		} {
			if g, ok := d.Grant(asOf); ok || g != (Grant{}) {
				t.Errorf("Grant(owed %s): got %+v, %v, want no grant", d.Owed, g, ok)
			}
		}
	})
}

func grantsEqual(a, b Grant) bool {
	return a.IdempotencyKey == b.IdempotencyKey && a.Program == b.Program && a.AccountID == b.AccountID &&
		a.BeneficiaryID == b.BeneficiaryID && a.TemplateID == b.TemplateID && a.ReferredUser == b.ReferredUser &&
		a.Role == b.Role && a.Amount.Equal(b.Amount) && a.GrantedBefore.Equal(b.GrantedBefore) &&
		a.Spend.Equal(b.Spend) && a.Earned.Equal(b.Earned) && a.AsOf.Equal(b.AsOf)
}

func TestIdempotencyKey(t *testing.T) {
	tests := []struct {
		name    string
		program Program
		account string
		role    string
		before  decimal.Decimal
		want    string
	}{
		{"referral", Referral, "alice", "", dec("40"), "referral:alice:40.00"},
		{"zero renders 0.00", Referral, "alice", "", decimal.Zero, "referral:alice:0.00"},
		{"zero value decimal", Template, "tpl", "", decimal.Decimal{}, "template:tpl:0.00"},
		{"comma", Template, "tpl,1", "", dec("0"), "template:tpl%2C1:0.00"},
		{"serverless role", ServerlessReferral, "bob", RoleReferrer, dec("0"), "serverless_referral:bob/referrer:0.00"},
		{"colon", Referral, "a:b", "", dec("1.5"), "referral:a%3Ab:1.50"},
		{"slash", ServerlessReferral, "a/referrer", RoleReferred, dec("0"), "serverless_referral:a%2Freferrer/referred:0.00"},
		{"space", Referral, "a b", "", dec("0"), "referral:a+b:0.00"},
		{"plus", Referral, "a+b", "", dec("0"), "referral:a%2Bb:0.00"},
		{"quotes", Referral, `"a'`, "", dec("0"), "referral:%22a%27:0.00"},
		{"newline", Referral, "a\nb", "", dec("0"), "referral:a%0Ab:0.00"},
		{"unicode", Referral, "héllo", "", dec("0"), "referral:h%C3%A9llo:0.00"},
		{"percent", Referral, "a%2Cb", "", dec("0"), "referral:a%252Cb:0.00"},
		{"empty account", Referral, "", "", dec("0"), "referral::0.00"},
		{"large before", Referral, "x", "", dec("1234567.89"), "referral:x:1234567.89"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IdempotencyKey(tt.program, tt.account, tt.role, tt.before); got != tt.want {
				t.Errorf("IdempotencyKey(%s, %q, %q, %s): got %q, want %q", tt.program, tt.account, tt.role, tt.before, got, tt.want)
			}
		})
	}
}

// TestIdempotencyKeyUnambiguous checks that no two different (program, account, role, before)
// share a key, over accounts built to collide if escaping were missing.
func TestIdempotencyKeyUnambiguous(t *testing.T) {
	accounts := []string{
		"", "a", "b", "a b", "a+b", "a%20b", "a:b", "a:0.00", "a/referrer", "a/referred", "a,b", "a%2Cb",
		`"a"`, "'a'", "a\nb", "a\tb", "é", "e\u0301", "日本", "\x00", "\xff", "referral:a", "a:b:0.00",
	}
	roles := []string{"", RoleReferrer, RoleReferred}
	befores := []decimal.Decimal{decimal.Zero, dec("0.01"), dec("40.00"), dec("400")}
	type tuple struct {
		p       Program
		account string
		role    string
		before  string
	}
	seen := map[string]tuple{}
	for _, p := range Programs {
		for _, a := range accounts {
			for _, r := range roles {
				for _, b := range befores {
					cur := tuple{p, a, r, b.StringFixed(2)}
					key := IdempotencyKey(p, a, r, b)
					if prev, ok := seen[key]; ok && prev != cur {
						t.Errorf("key %q: got it for both %+v and %+v, want distinct keys", key, prev, cur)
					}
					seen[key] = cur
				}
			}
		}
	}
}

func FuzzIdempotencyKey(f *testing.F) {
	f.Add("alice", "bob", uint8(0), uint8(0), int64(0), int64(0))
	f.Add("a:b", "a%3Ab", uint8(1), uint8(1), int64(4000), int64(4000))
	f.Add("a/referrer", "a", uint8(0), uint8(1), int64(1), int64(1))
	f.Add("a b", "a+b", uint8(2), uint8(2), int64(0), int64(0))
	f.Add("x:1.00", "x", uint8(0), uint8(0), int64(100), int64(100))
	f.Add("é\n\"", "\xff", uint8(1), uint8(2), int64(5), int64(7))
	roles := []string{"", RoleReferrer, RoleReferred}
	f.Fuzz(func(t *testing.T, a, b string, ra, rb uint8, ca, cb int64) {
		roleA, roleB := roles[int(ra)%len(roles)], roles[int(rb)%len(roles)]
		beforeA, beforeB := decimal.New(ca, -2), decimal.New(cb, -2)
		for _, p := range Programs {
			ka := IdempotencyKey(p, a, roleA, beforeA)
			kb := IdempotencyKey(p, b, roleB, beforeB)
			same := a == b && roleA == roleB && ca == cb
			if same != (ka == kb) {
				t.Errorf("(%q,%q,%s) -> %q and (%q,%q,%s) -> %q: got equal=%v, want %v",
					a, roleA, beforeA, ka, b, roleB, beforeB, kb, ka == kb, same)
			}
			if ka != IdempotencyKey(p, a, roleA, beforeA) {
				t.Errorf("IdempotencyKey(%q): got a different key on a second call", a)
			}
			// The key parses back: program, account (and role), amount, in three ':' fields.
			fields := strings.Split(ka, ":")
			if len(fields) != 3 || fields[0] != string(p) || fields[2] != beforeA.StringFixed(2) {
				t.Fatalf("key %q: got fields %q, want [%s <account> %s]", ka, fields, p, beforeA.StringFixed(2))
			}
			acct, role, _ := strings.Cut(fields[1], "/")
			if role != roleA {
				t.Errorf("key %q: got role %q, want %q", ka, role, roleA)
			}
			if strings.ContainsAny(acct, ":/\n ,\"") {
				t.Errorf("key %q: got unescaped separator in account %q", ka, acct)
			}
		}
	})
}

func BenchmarkEvaluateReferrer(b *testing.B) {
	p := DefaultParams()
	in := ReferrerTotals{ReferrerID: "r1", Referrals: 30, Spend: dec("123456.789012"), Accepted: true, Granted: dec("2000.00")}
	b.ReportAllocs()
	for b.Loop() {
		p.EvaluateReferrer(in)
	}
}

func BenchmarkFloorToCent(b *testing.B) {
	d := dec("18.1440123456")
	b.ReportAllocs()
	for b.Loop() {
		FloorToCent(d)
	}
}
