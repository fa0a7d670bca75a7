// Package jobs holds creditrecon's use cases: Run (and its dry run), Backfill, Serve, Export,
// Explain and Verify, and the small interfaces they need from the database (Store, Session,
// Snapshot, Auditor) and from whoever watches runs (Observer). It orchestrates; the rules live in
// package reconcile, the SQL in package sqlstore (directory sql/), the report formats and sinks
// in package reports.
//
// A run takes the advisory lock on one pinned connection (ErrLocked when another runner holds
// it), marks runs left "running" by a dead runner as abandoned, records itself in the run ledger,
// and in one repeatable-read transaction aggregates the usage (extending the previous run's
// aggregates when it can: see BaseRun), plans, and writes the plan's grants and its counts; then
// it exports the reports. The grants table's unique keys make a double grant impossible even
// without the lock (ErrGrantConflict).
package jobs
