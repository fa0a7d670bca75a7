package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/lib/pq"
	"github.com/shopspring/decimal"

	"github.com/runpod/creditrecon/jobs"
)

// LedgerSummary reads what the summary page shows of the ledger as of q.AsOf: the grants per
// cutoff, program and payout with q.Since < as_of <= q.AsOf, and the q.Top beneficiaries granted
// the most up to q.AsOf. Both are aggregated in PostgreSQL.
func (s *Snapshot) LedgerSummary(ctx context.Context, q jobs.LedgerQuery) (jobs.LedgerSummary, error) {
	var out jobs.LedgerSummary
	if err := s.tx.SelectContext(ctx, &out.Daily, query("summary_daily"), q.Since, q.AsOf); err != nil {
		return out, fmt.Errorf("sum grants per cutoff %s..%s: %w", q.Since.Format(time.RFC3339), q.AsOf.Format(time.RFC3339), translate(err))
	}
	for i := range out.Daily {
		out.Daily[i].AsOf = out.Daily[i].AsOf.UTC()
	}
	var top []struct {
		BeneficiaryID string          `db:"beneficiary_id"`
		Programs      pq.StringArray  `db:"programs"`
		Grants        int64           `db:"grants"`
		GrantedToDate decimal.Decimal `db:"granted_to_date"`
		GrantedAsOf   decimal.Decimal `db:"granted_as_of"`
	}
	if err := s.tx.SelectContext(ctx, &top, query("summary_top"), q.AsOf, q.Top); err != nil {
		return out, fmt.Errorf("find the top beneficiaries as_of=%s: %w", q.AsOf.Format(time.RFC3339), translate(err))
	}
	for _, b := range top {
		out.Top = append(out.Top, jobs.TopBeneficiary{BeneficiaryID: b.BeneficiaryID, Programs: b.Programs, Grants: b.Grants,
			GrantedToDate: b.GrantedToDate, GrantedAsOf: b.GrantedAsOf})
	}
	return out, nil
}
