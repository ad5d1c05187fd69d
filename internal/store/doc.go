// Package store owns hubexport's own tables in PostgreSQL (schema
// hubexport): the embedded migrations, the job records with their state
// machine, and the audit trail. It implements export.JobStore for the API
// and the attempt bookkeeping the workers need.
//
// It never runs DDL outside schema hubexport and never reads the hub's
// tables (internal/hub does that).
package store
