package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/shopspring/decimal"

	"github.com/runpod/creditrecon/reconcile"
)

// DrawnGrant is a signup bonus grant whose amount was drawn, with what its run recorded.
type DrawnGrant struct {
	ID               int64           `db:"id"`
	TermsID          string          `db:"terms_id"`
	ReferredUser     string          `db:"account_id"`
	Role             string          `db:"role"`
	Amount           decimal.Decimal `db:"amount_usd"`
	U                string          `db:"draw_u"`
	Entry            int             `db:"draw_entry"`
	RunID            int64           `db:"run_id"`
	DrawSecretSHA256 string          `db:"draw_secret_sha256"` // of the run that granted it
	Parameters       []byte          `db:"parameters"`
	Terms            []byte          `db:"terms"`
}

// verifyDraws recomputes every drawn signup bonus from the draw secret (SPEC 8.1): the same u,
// the same entry of its version's table, the same amount. Grants drawn under another secret (a
// rotated one) are counted apart, not checked; without a secret, drawn grants are not checked
// and the check says so.
func (r *Runner) verifyDraws(ctx context.Context, a Auditor) (Check, error) {
	c := Check{Name: "draws", Title: "drawn signup bonuses recompute from the draw secret"}
	sum := sha256.Sum256(r.Config.DrawSecret)
	secretHash := hex.EncodeToString(sum[:])
	other, unchecked := 0, 0
	cache := map[int64]reconcile.Terms{}
	err := a.DrawnGrants(ctx, func(g DrawnGrant) error {
		if len(r.Config.DrawSecret) == 0 {
			unchecked++
			return nil
		}
		if g.DrawSecretSHA256 != secretHash {
			other++
			return nil
		}
		c.Checked++
		terms, ok := cache[g.RunID]
		if !ok {
			t, _, err := termsOfRun(r.Config.Params, g.Parameters, g.Terms)
			if err != nil {
				return fmt.Errorf("terms of run %d: %w", g.RunID, err)
			}
			terms, cache[g.RunID] = t, t
		}
		v, ok := terms.SignupVersion(g.TermsID)
		if !ok {
			c.fail("grant %d: its run's terms have no signup version %s", g.ID, g.TermsID)
			return nil
		}
		d := reconcile.Draw(r.Config.DrawSecret, v.ID, g.ReferredUser, g.Role, v.Draw)
		if d.U.String() != g.U || d.Entry != g.Entry || !d.USD.Equal(g.Amount) {
			c.fail("grant %d (%s's %s bonus, %s): recorded u %s, entry %d, %s USD; the secret draws u %s, entry %d, %s USD",
				g.ID, g.ReferredUser, g.Role, g.TermsID, g.U, g.Entry, g.Amount.StringFixed(2), d.U, d.Entry, d.USD.StringFixed(2))
		}
		return nil
	})
	if err != nil {
		return c, fmt.Errorf("verify draws: %w", err)
	}
	if other > 0 {
		c.Title += fmt.Sprintf(" (%d drawn under another secret, not checked)", other)
	}
	if unchecked > 0 {
		c.Skipped = fmt.Sprintf("%d drawn bonuses: set CREDITRECON_DRAW_SECRET to recompute them", unchecked)
	}
	return c, nil
}
