// Package pgretry owns one rule: a PostgreSQL read that failed because its
// connection was lost (the server terminated the backend, restarted, or the
// network dropped it) is tried once more on a new connection. Writes are
// never retried here: whether they took effect is unknown.
package pgretry
