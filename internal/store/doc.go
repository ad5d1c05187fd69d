// Package store owns hubexport's own tables in PostgreSQL (schema
// hubexport): the embedded migrations, the job records with their state
// machine, the audit trail, and webhook endpoints with their delivery logs.
// It implements export.JobStore, export.WebhookStore and export.AuditStore
// for the API, and the bookkeeping the workers need.
//
// It never runs DDL outside schema hubexport and never reads the hub's
// tables (internal/hub does that).
package store
