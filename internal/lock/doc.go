// Package lock implements leases in Redis: a key holding a unique value with a TTL, renewed
// while its holder works and released only by its holder (compare-and-delete). A job's lease
// keeps a re-delivered task from running beside a live first attempt. The backup lock is CCH's
// own key (database:backup:lock), renewed while held, backed by a PostgreSQL advisory lock
// when Redis cannot be reached, so hubexport instances and CCH's web UI never dump or restore
// at once.
//
// Lease.Keep is the one renewal loop: the job runner and the backup lock both hold their keys
// with it, adding their own checks.
//
// It owns the locking protocol and nothing else: it knows no jobs, tasks, storage or domain
// errors. Its errors are its own (ErrHeld, ErrLost, *HeldError); callers turn them into what
// their users read.
package lock
