// Package storage keeps export artifacts: on local disk (file://) or in an S3-compatible bucket
// (s3://). It implements export.ObjectStore and export.Upload.
//
// It owns: streaming writes that become visible only on Commit (an atomic rename, or a completed
// multipart upload), cleanup of unfinished writes (temp files, multipart uploads), download links
// (presigned S3 GETs, or HMAC-signed expiring links for the local backend) and, for the local
// backend only, the HTTP handler that serves those links.
//
// It must not know about jobs, users or HTTP routing beyond that one file handler: callers pass
// keys such as "exports/2026/01/exp_01J.../usage-logs-20260129-103000.csv".
package storage
