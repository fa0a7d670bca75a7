// Package reports renders what a creditrecon run decided as CSV reports for finance and
// stores them, with a manifest, on a local folder or in S3.
//
// # Layout
//
// Each business date (the day before the run's cutoff) gets one set of objects under the
// REPORTS_URL:
//
//	dt=2026-02-01/grants.csv                 one row per grant with as_of = cutoff
//	dt=2026-02-01/referrers.csv              one row per referrer (Referral Program)
//	dt=2026-02-01/templates.csv              one row per template (Template Program)
//	dt=2026-02-01/serverless_referrals.csv   one row per referral past the serverless threshold
//	dt=2026-02-01/anomalies.csv              one row per usage row excluded from earnings
//	dt=2026-02-01/summary.html               the night on one page, for people
//	dt=2026-02-01/manifest.json              written last: present means the set is complete
//
// The CSV files follow RFC 4180: UTF-8, CRLF line ends, one header row, fields quoted only
// when they contain a comma, quote, CR or LF or start with a space. A line feed inside a
// quoted cell is written as CRLF and reads back as LF; encoding/csv drops a lone CR inside a
// cell, which no billing ID is expected to hold. Rows come in the order the
// Source gives them; the Source sorts them, so the files are deterministic. Money is a plain
// decimal with a dot: amounts in whole cents (amount_usd, target_usd, granted_usd,
// clawback_due_usd, ...) always have two decimals, exact amounts (spend, earned_usd) have as
// many as they need. Times are RFC 3339 in UTC, e.g. 2026-02-01T00:00:00Z. A text or ID cell
// starting with =, +, -, @, tab, CR or a single quote gets one extra leading single quote so
// that a spreadsheet does not run it as a formula; remove one leading quote from a text cell
// to recover the stored value. Money columns are never altered: -3.50 stays -3.50.
//
// # Summary page
//
// summary.html renders, with html/template, what the rows and the manifest say and what the
// caller adds (ManifestInfo.Summary: a 90-day trend of grants, the top beneficiaries, the
// accounts closest to a threshold, the liability, the terms versions). It is self-contained: inline
// CSS and SVG (chart.go draws the charts), no script, no external reference, and a
// Content-Security-Policy that forbids every fetch. Each figure the manifest also holds is taken
// from the manifest and marked with data-figure (its JSON path) and data-value, so tests compare
// the two. It has no generation time either, so it regenerates byte for byte. It is written after
// the tie-out, and says whether the set ties out; when it does not, no manifest follows.
//
// # Manifest
//
// manifest.json holds the run id, the cutoff (as_of), the business date, the binary's
// version, the program parameters and terms, the control totals per program (usage rows and usage
// considered, earned, granted as of the cutoff, granted to date), with a summary the liability
// per program (accrued, waiting, clawback due), the anomaly count, and for every file its key,
// row count (CSV records without header; 0 for summary.html), byte size and hex SHA-256. Amounts are
// JSON strings. It has no generation time, so regenerating a set from unchanged data gives
// byte-identical objects, the manifest included. Export writes the manifest only after the
// CSV sums tie out to the control totals computed from the database: grants.csv amount_usd
// per program equals granted_as_of_usd, granted_usd of referrers.csv, templates.csv and
// serverless_referrals.csv equals granted_to_date_usd of their program, and anomalies.csv has
// as many rows as the anomaly count. To verify a download, compare its size and
// `sha256sum` with the manifest's entry.
//
// # Sinks
//
// OpenSink turns a REPORTS_URL into a Sink: file:// writes each object to a temporary file,
// syncs it and renames it into place; s3:// streams each object through a multipart upload
// with a few parts in memory, so neither sink ever holds a whole report.
package reports
