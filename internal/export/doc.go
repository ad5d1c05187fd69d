// Package export is hubexport's domain: export jobs, their types, formats and
// parameters, the principals who ask for them, the errors users see, the
// Service that creates, lists, cancels and links jobs, webhook endpoints and
// events (Webhooks, Notifier), backup schedules with their slots, retention
// and freshness (Schedules), the audit listing (AuditLog), and the hub
// lookups behind the web page's selectors (Lookups over a Directory).
//
// It owns the rules (who may ask for what, which parameters are valid, how a
// job moves between states) and declares the interfaces the outer packages
// implement: JobStore (PostgreSQL), Queue (Asynq), ObjectStore (local or S3)
// and Authenticator (CCH keys). It imports only the standard library and must
// never learn about Gin, Asynq, pgx or the AWS SDK.
package export
