// Package store owns hubexport's own tables in PostgreSQL (schema
// hubexport): the embedded migrations, the job records with their state
// machine, the audit trail, webhook endpoints with their delivery logs, and
// backup schedules. It implements export.JobStore, export.WebhookStore,
// export.ScheduleStore and export.AuditStore for the API, and the
// bookkeeping the workers need.
//
// It never runs DDL outside schema hubexport and never reads the hub's
// tables (internal/hub does that).
package store
