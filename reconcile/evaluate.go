package reconcile

import (
	"fmt"
	"strings"

	"github.com/shopspring/decimal"
)

// ReferralVersion returns the Referral Program version id, and false when there is none.
func (t Terms) ReferralVersion(id string) (ReferralVersion, bool) { return find(t.Referral, id) }

// TemplateVersion returns the Template Program version id, and false when there is none.
func (t Terms) TemplateVersion(id string) (TemplateVersion, bool) { return find(t.Template, id) }

// ServerlessVersion returns the Serverless Referral Program version id, and false when there is
// none.
func (t Terms) ServerlessVersion(id string) (ServerlessVersion, bool) { return find(t.Serverless, id) }

// SignupVersion returns the signup bonus version id, and false when there is none.
func (t Terms) SignupVersion(id string) (SignupVersion, bool) { return find(t.Signup, id) }

// find returns the version id of a program's versions.
func find[V interface{ version() Version }](versions []V, id string) (V, bool) {
	for _, v := range versions {
		if v.version().ID == id {
			return v, true
		}
	}
	var none V
	return none, false
}

// EvaluateReferrer applies the Referral Program (SPEC 2.2, 7.2) to a referrer's account of one
// version: its referrals bound to the version, and the earnings of their usage under its rates
// and window. Earnings made before the referrer became eligible are kept: once eligible, the
// target is the whole earned amount (up to the version's cap).
func (t Terms) EvaluateReferrer(rt ReferrerTotals) Decision {
	d := Decision{
		Program: Referral, TermsID: rt.TermsID, AccountID: rt.ReferrerID, BeneficiaryID: rt.ReferrerID,
		Spend: rt.Spend, Earned: rt.Earned, Granted: rt.Granted,
	}
	v, ok := t.ReferralVersion(rt.TermsID)
	d.Payout = v.PayoutOf()
	if why := unpaid(v.Version, ok); why != "" {
		return disabled(d, why)
	}
	var unmet []string
	if rt.Referrals < v.MinReferrals {
		unmet = append(unmet, fmt.Sprintf("%s, needs %d", plural(rt.Referrals, "referral"), v.MinReferrals))
	}
	if rt.Spend.LessThan(v.MinSpend) {
		unmet = append(unmet, fmt.Sprintf("referral spend %s, needs %s", rt.Spend.StringFixed(2), v.MinSpend.StringFixed(2)))
	}
	if v.RequiresAcceptance && !rt.Accepted {
		unmet = append(unmet, "not accepted into the program")
	}
	d = t.settle(d, unmet, v.Cap)
	if rt.NotNew > 0 {
		d.Reason = joinReason(d.Reason, fmt.Sprintf("%s excluded: not_new_account", plural(rt.NotNew, "referral")))
	}
	return d
}

// EvaluateTemplate applies the Template Program (SPEC 2.3, 7.2) to a template; its creator is
// paid.
func (t Terms) EvaluateTemplate(tt TemplateTotals) Decision {
	d := Decision{
		Program: Template, TermsID: tt.TermsID, AccountID: tt.TemplateID, BeneficiaryID: tt.CreatorID, TemplateID: tt.TemplateID,
		Spend: tt.Spend, Earned: tt.Earned, Granted: tt.Granted,
	}
	v, ok := t.TemplateVersion(tt.TermsID)
	d.Payout = v.PayoutOf()
	if why := unpaid(v.Version, ok); why != "" {
		return disabled(d, why)
	}
	var unmet []string
	if tt.RuntimeSeconds < v.MinRuntimeSeconds {
		unmet = append(unmet, fmt.Sprintf("%d runtime seconds, needs %d", tt.RuntimeSeconds, v.MinRuntimeSeconds))
	}
	return t.settle(d, unmet, v.Cap)
}

// EvaluateServerless applies the Serverless Referral Program (SPEC 2.1, 7.2) to a referral: the
// referrer's bonus and the referred user's bonus. Each is granted once, ever; a later refund
// does not revoke it (the status says "refunded", and no clawback is due).
func (t Terms) EvaluateServerless(st ServerlessTotals) [2]Decision {
	v, ok := t.ServerlessVersion(st.TermsID)
	why := unpaid(v.Version, ok)
	reached := why == "" && st.Spend.GreaterThanOrEqual(v.Threshold)
	var pending string // why neither role is paid yet, formatted once for both
	if why == "" && !reached {
		pending = "serverless spend " + st.Spend.StringFixed(2) + ", needs " + v.Threshold.StringFixed(2)
	}
	role := func(role, beneficiary string, bonus, granted decimal.Decimal) Decision {
		d := Decision{
			Program: ServerlessReferral, TermsID: st.TermsID, AccountID: st.ReferredUserID, BeneficiaryID: beneficiary,
			ReferredUser: st.ReferredUserID, Role: role, Payout: v.PayoutOf(),
			Spend: st.Spend, Granted: granted, Eligible: reached,
		}
		if reached {
			d.Earned, d.Target = bonus, bonus
		}
		if d.Granted.LessThan(d.Target) {
			d.Owed = d.Target.Sub(d.Granted)
		}
		switch {
		case why != "":
			d.Status, d.Reason = StatusDisabled, why
		case reached:
			d.Status = StatusGranted
		case granted.IsPositive():
			d.Status, d.Reason = StatusRefunded, "bonus paid; refunds took serverless spend under the threshold"
		default:
			d.Status = StatusPending
			d.Reason = pending
		}
		return t.hold(d)
	}
	return [2]Decision{
		role(RoleReferrer, st.ReferrerID, v.ReferrerBonus, st.GrantedReferrer),
		role(RoleReferred, st.ReferredUserID, v.ReferredBonus, st.GrantedReferred),
	}
}

// unpaid says why an account of version v (found: ok) earns nothing, or "" when it may.
func unpaid(v Version, ok bool) string {
	switch {
	case !ok:
		return "starts before the program's first terms version"
	case !v.Enabled && v.ID == SeedTermsID:
		return "program disabled"
	case !v.Enabled:
		return fmt.Sprintf("terms version %s is disabled", v.ID)
	}
	return ""
}

// settle sets the target from eligibility (no unmet condition) and the cap, then owed,
// clawback_due and the status. A negative earned amount (refunds beyond spend) targets zero:
// grants are never negative. Clawback measures earnings lost to refunds, granted - the target
// the earnings support, whether or not the account is still eligible: losing eligibility stops
// new grants but does not make the earnings already paid "due back".
func (t Terms) settle(d Decision, unmet []string, cap *decimal.Decimal) Decision {
	d.Eligible = len(unmet) == 0
	d.Reason = strings.Join(unmet, "; ")
	supported := decimal.Max(FloorToCent(d.Earned), decimal.Zero)
	capped := cap != nil && supported.GreaterThan(*cap)
	if capped {
		supported = *cap
	}
	if d.Eligible {
		d.Target = supported
	}
	if d.Target.GreaterThan(d.Granted) {
		d.Owed = d.Target.Sub(d.Granted)
	}
	if d.Granted.GreaterThan(supported) {
		d.ClawbackDue = d.Granted.Sub(supported)
	}
	switch {
	case d.ClawbackDue.IsPositive():
		d.Status = StatusClawback
		if d.Reason == "" {
			d.Reason = "refunds reduced earnings below what was granted"
		}
	case d.Eligible && capped:
		d.Status, d.Reason = StatusCapped, fmt.Sprintf("earned %s, capped at %s", FloorToCent(d.Earned).StringFixed(2), cap.StringFixed(2))
	case d.Eligible:
		d.Status = StatusGranted
	default:
		d.Status = StatusAccrued
	}
	return t.hold(d)
}

// hold keeps back an amount owed under the minimum grant: it carries until owed reaches it.
func (t Terms) hold(d Decision) Decision {
	if d.Owed.IsPositive() && d.Owed.LessThan(t.MinGrant) {
		d.Waiting, d.Owed = d.Owed, decimal.Zero
		d.Reason = joinReason(d.Reason, fmt.Sprintf("owed %s is under the minimum grant %s", d.Waiting.StringFixed(2), t.MinGrant.StringFixed(2)))
	}
	return d
}

// disabled is the decision for an account that earns nothing under its terms: nothing is owed
// and nothing is clawed back.
func disabled(d Decision, why string) Decision {
	d.Status, d.Reason = StatusDisabled, why
	return d
}

func joinReason(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// plural writes n and noun, with an s unless n is 1: "1 referral", "3 referrals".
func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
