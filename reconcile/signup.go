package reconcile

import (
	"fmt"
	"slices"

	"github.com/shopspring/decimal"
)

// Kinds of signup bonus amount.
const (
	BonusFixed = "fixed"
	BonusDraw  = "draw"
)

// Bonus says how a recipient's signup bonus is chosen: the recipient's country (upper-cased, ""
// when unknown), the kind (BonusFixed or BonusDraw) and, for a draw, the draw.
type Bonus struct {
	Country string
	Kind    string
	Drawn   *Drawn
}

// SignupTotals are a referral's signup bonus aggregates as of a cutoff (SPEC 8.1): the referred
// user's loads since the referral, both recipients' countries as billing holds them, and the
// bonuses granted per role.
type SignupTotals struct {
	ReferredUserID  string
	ReferrerID      string
	TermsID         string
	Loads           decimal.Decimal
	ReferrerCountry *string
	ReferredCountry *string
	GrantedReferrer decimal.Decimal
	GrantedReferred decimal.Decimal

	GrantedReferrerAsOf decimal.Decimal
	GrantedReferredAsOf decimal.Decimal
}

// EvaluateSignup applies a signup bonus version to a referral: once the referred user's loads
// reach min_load_usd, the referrer and the referred user are each owed one bonus, once ever. A
// recipient whose country is in fixed_countries gets fixed_usd; the others a draw from the table
// (Draw, with secret), and a recipient of unknown country what unknown_country says. A bonus
// granted is final: a later refund does not revoke it, and neither the terms' table nor the
// secret can change it (so no clawback is ever due). secret may be nil when the version draws
// for nobody; a draw without it is an error, which Validate-time checks rule out.
func (t Terms) EvaluateSignup(st SignupTotals, secret []byte) ([2]Decision, error) {
	v, ok := t.SignupVersion(st.TermsID)
	why := unpaid(v.Version, ok)
	reached := why == "" && st.Loads.GreaterThanOrEqual(v.MinLoad)
	role := func(role, beneficiary string, country *string, granted decimal.Decimal) (Decision, error) {
		d := Decision{
			Program: SignupBonus, TermsID: st.TermsID, AccountID: st.ReferredUserID, BeneficiaryID: beneficiary,
			ReferredUser: st.ReferredUserID, Role: role, Payout: v.PayoutOf(),
			Spend: st.Loads, Granted: granted, Eligible: reached,
		}
		if why != "" {
			d.Status, d.Reason = StatusDisabled, why
			return d, nil
		}
		b, err := v.bonus(role, st.ReferredUserID, country, secret)
		if err != nil {
			return d, err
		}
		d.Bonus = &b
		amount := v.Fixed
		if b.Drawn != nil {
			amount = b.Drawn.USD
		}
		switch {
		case granted.IsPositive():
			// Paid once, ever, whatever the loads, the table or the secret say now.
			d.Earned, d.Target, d.Status = granted, granted, StatusGranted
			if !reached {
				d.Status, d.Reason = StatusRefunded, "bonus paid; refunds took the loads under the minimum"
			}
		case reached:
			d.Earned, d.Target, d.Owed, d.Status = amount, amount, amount, StatusGranted
		default:
			d.Status = StatusPending
			d.Reason = fmt.Sprintf("loads %s, needs %s", st.Loads.StringFixed(2), v.MinLoad.StringFixed(2))
		}
		return t.hold(d), nil
	}
	referrer, err := role(RoleReferrer, st.ReferrerID, st.ReferrerCountry, st.GrantedReferrer)
	if err != nil {
		return [2]Decision{}, err
	}
	referred, err := role(RoleReferred, st.ReferredUserID, st.ReferredCountry, st.GrantedReferred)
	return [2]Decision{referrer, referred}, err
}

// bonus chooses how a recipient's bonus is set: by the recipient's country, fixed or drawn.
func (v SignupVersion) bonus(role, referredUser string, country *string, secret []byte) (Bonus, error) {
	var b Bonus
	known := false
	if country != nil {
		b.Country, known = NormalizeCountry(*country)
	}
	switch {
	case known && slices.Contains(v.FixedCountries, b.Country):
		b.Kind = BonusFixed
	case known, v.UnknownCountry == UnknownDraw:
		b.Kind = BonusDraw
	default:
		b.Kind = BonusFixed
	}
	if b.Kind == BonusDraw {
		if len(secret) < MinDrawSecret {
			return b, fmt.Errorf("signup bonus %s draws for %s's %s: no draw secret of at least %d bytes", v.ID, referredUser, role, MinDrawSecret)
		}
		drawn := Draw(secret, v.ID, referredUser, role, v.Draw)
		b.Drawn = &drawn
	}
	return b, nil
}

// Draws reports whether a version can draw a bonus: it is enabled and has a draw table. (Any
// known country outside fixed_countries draws, so an enabled version always may.)
func (v SignupVersion) Draws() bool { return v.Enabled && len(v.Draw) > 0 }
