// Package jobs holds creditrecon's use cases: Run (and its dry run), Explain, and the small
// interfaces they need from the database (Store, Session, Snapshot) and from the reports
// (Exporter). It orchestrates; the rules live in package reconcile, the SQL in package sqlstore
// (directory sql/), the report formats in package reports.
//
// A run takes the advisory lock on one pinned connection (ErrLocked when another runner holds
// it), marks runs left "running" by a dead runner as abandoned, records itself in the run ledger,
// plans from one repeatable-read snapshot, writes the plan's grants and its counts in one
// transaction, then exports the reports. The grants table's unique keys make a double grant
// impossible even without the lock (ErrGrantConflict).
package jobs
