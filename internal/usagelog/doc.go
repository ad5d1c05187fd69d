// Package usagelog renders usage-log rows (export.UsageRow) as the files a usage_logs export
// produces: CSV exactly as DESIGN.md's "Usage-log CSV" fixes it, the same CSV gzipped, JSON
// Lines, XLSX (its own small SpreadsheetML writer, xlsx.go) with a summary sheet, and Apache
// Parquet through parquet-go (pure Go, row-oriented generic writer with a row-group bound, zstd;
// Apache Arrow's Go module, the other maintained implementation, is columnar-first and heavier,
// and serves the tests as an independent reader instead).
//
// It owns the cell rules (formula-injection guard, RFC 4180 quoting, 15-significant-digit plain
// decimals, ISO 8601 times) and nothing upstream of them: it never queries a database (the rows'
// selection, joins and retry count are internal/hub's) and never touches storage. Every encoder
// writes row by row to an io.Writer and holds no more than one row (the XLSX encoder also its
// compressor's window and the summary's hourly sums), except the Parquet encoder, which holds one
// row group (see parquet.go); none uses a temporary file.
package usagelog
