// Package drill is creditrecon's fault-injection suite: `go test` trials that break a real
// PostgreSQL and a real S3-compatible server under the real binary, with seeded randomness, and
// check after every trial that no credit was granted twice or lost. It has no code outside its
// tests.
//
// # What a trial is
//
// TestMain builds cmd/creditrecon once (go build, into a temporary directory) and every trial runs
// it as a subprocess, as the Kubernetes CronJob does. TestDrill loads a synthetic population once
// (internal/synth, -drill.rows usage rows over 2025, the referrers with 25 referrals accepted),
// migrates it, and keeps it as a template database. Each trial works on its own copy
// (CREATE DATABASE ... TEMPLATE), so trials are independent. Two clean references are taken on
// copies: one `run --as-of 2026-01-01` and one `backfill --from 2025-12-30 --to 2026-01-01`; their
// durations set the range of the random fault instants, and their ledgers are what every trial
// must end with, grant for grant.
//
// After the faults of a trial, and again after a plain re-run, the drill audits the database
// (audit): no two grants share an idempotency key or an account-chain position; each grant's
// granted_before_usd is the sum of its account's earlier grants; every grant belongs to an existing
// run, of the same cutoff, that recorded committing its grants; every run has exactly the grants
// its ledger row counts or none (no partial grant set); no grant is zero, negative or has
// sub-cents; at the end no run is left running. At the end it also runs `creditrecon verify`, the
// operators' audit, which must pass (it re-evaluates what is owed and ties the manifests in the
// trial's reports location out to the ledger). It then compares the ledger with the clean
// reference per (program, account_id, role): an account above it is a double grant, one below a
// lost grant, and any difference in the set of grants a divergence.
//
// # Scenarios
//
//   - sigkill-run, sigkill-backfill: SIGKILL of `creditrecon run` or `backfill` at an instant
//     drawn uniformly over the clean command's duration, then the same command again (a backfill
//     resumes), retried while the killed runner's server session still holds the lock.
//   - sigkill-shard: a night as three shards at once (`run --shard I/3`), one of them killed at an
//     instant drawn uniformly over a clean run's duration, then every shard again, as an Indexed
//     Job retries: the ledger must be one clean unsharded run's, and the merged reports tie out.
//   - concurrent-lock: 4 to 6 runs started at once; one takes the advisory lock, the others exit 3.
//   - concurrent-lock-lost: 4 to 6 runners that retry while locked out, and the lock holder's
//     backend terminated (pg_terminate_backend, found in pg_locks) once or twice at a random
//     instant, so that another runner takes the lock while the first may still be in flight.
//   - concurrent-no-lock: in process, through package jobs and the sql store: writers with stale
//     (and partial) plans committing one after another through the lock's session API, then
//     writers inserting at the same instant on their own transactions with no lock at all, with
//     the store's own insert statement. Overlapping plans must never both land.
//   - db-kill-read, db-kill-write: the run's backend terminated while it reads usage_events, or
//     while it writes its grants (half the trials stall the grant INSERT with a trigger on the
//     trial's copy so the kill lands after every grant is inserted and before the commit; the
//     others race the INSERT).
//   - db-restart: PostgreSQL stopped immediately (as a crash) and started during a run.
//   - db-statement-timeout: a run whose connection URL sets statement_timeout, drawn from 5 ms to
//     the clean run's duration.
//   - s3-down, s3-slow-flaky, s3-mid-upload, s3-mid-multipart: the reports go to s3test's
//     server behind a handler that fails every request, delays every request and fails each first
//     attempt, fails uploads once a random number of body bytes has been received, or fails the
//     multipart part uploads of a 19 MiB anomalies.csv from part 2 or 3 on. Failures are 403s,
//     which fail at once, except on every fourth trial (the first of s3-down), whose 500s the SDK
//     retries with backoff. The run must fail with exit 1 saying its grants are committed (or
//     succeed when the fault is recoverable), lose no grant, and leave no manifest; once the fault
//     clears, `creditrecon export` must write files byte-identical to an export of the same
//     database to a file:// folder, and equal to the clean reference's reports except for what
//     names rows of one database (grants.csv's grant_id, run_id and created_at; the manifest's
//     run_id and grants.csv's size and hash).
//
// Every database fault must end in exit 1 (or 0 when it missed the run); every scenario ends with
// a plain run that must succeed and converge to the clean ledger.
//
// # Flags and figures
//
// Flags follow -args: -drill.trials N (trials per scenario, default 3), -drill.kills N (SIGKILL
// trials of run and of a sharded night; the backfill gets a quarter, at least -drill.trials),
// -drill.long (100 SIGKILL trials of run and of a sharded night, 25 of backfill, 10 of every
// other scenario), -drill.seed S (the population and every trial's choices; a trial's choices
// depend only on the seed, its scenario and its number, so one replays alone with
// -run TestDrill/SCENARIO/trial-NNN, its instants scaled to the measured clean durations),
// -drill.rows N (usage rows, default 300,000: a clean run takes about a second), -drill.terms FILE
// (the terms every command runs with; default testdata/terms.yaml, several versions per program,
// a drawn signup bonus and a cash partner tier, with a draw secret and five enrolled referrers;
// empty: the built-in terms).
//
// TestDrill prints a table: per scenario the trials, the faults injected (signals that ended a
// process, backends terminated, restarts, statements cancelled, S3 requests failed, concurrent
// writers beyond the first), the exit codes of the processes under fault ("killed" for a signal;
// each runner's last exit in concurrent-lock-lost, whose lock-outs are counted in the outcomes;
// ok/conflict/deadlock of the in-process writers), double grants, lost grants, divergences,
// invariant violations and report mismatches; then what happened in the trials (where kills
// landed, which statements were cut off). Any nonzero double, lost, divergence, violation or
// mismatch fails the test.
//
//	go test -count=1 -timeout 15m -v ./drill              # short form, about 3 minutes
//	scripts/drill                                          # long form, about 11 minutes
package drill
