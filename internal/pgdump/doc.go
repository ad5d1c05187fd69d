// Package pgdump runs PostgreSQL's own backup tools, pg_dump and pg_restore, for the backup and
// restore jobs: it parses DATABASE_URL into what libpq expects, picks a client whose major
// version can handle the server, streams `pg_dump -Fc` into a caller's writer, reads a dump's
// table of contents with `pg_restore --list`, and restores a dump, classifying pg_restore's
// stderr the way CCH does (hub-facts §3.4).
//
// It owns the child processes: they run without a shell, in their own process group (so a
// cancelled context kills them and anything they started), with --no-password, and with the
// password only in their environment (PGPASSWORD). A password never appears in an argument
// list, a log line or an error message.
//
// It must not know about jobs, storage, locks or HTTP: callers hash, upload and lock. Its user
// errors are *export.Error values with stable codes (pg_dump_too_old, not_a_dump, ...).
package pgdump
