package pgretry

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// ConnectionLost reports whether err says the connection, not the query,
// failed: SQLSTATE class 08 (connection exception), 57P01 admin shutdown
// (pg_terminate_backend), 57P02 crash shutdown, 57P03 cannot connect now,
// or the connection closing under the query.
func ConnectionLost(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
		return false
	}
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok {
		switch pe.Code {
		case "57P01", "57P02", "57P03":
			return true
		}
		return strings.HasPrefix(pe.Code, "08")
	}
	if pgconn.SafeToRetry(err) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return true
	}
	ne, isNet := errors.AsType[net.Error](err)
	return isNet && !ne.Timeout()
}

// Pool is the connection pool a read runs on (*pgxpool.Pool).
type Pool interface {
	// Reset closes every idle connection, and each busy one when it is
	// released.
	Reset()
}

// Read runs read, and runs it once more when it failed with a lost
// connection and ctx is still live. The pool is reset first: what ended
// one connection (a restart, pg_terminate_backend of every session, a
// network cut) has most likely ended the idle others too.
func Read(ctx context.Context, pool Pool, read func() error) error {
	err := read()
	if ConnectionLost(err) && ctx.Err() == nil {
		pool.Reset()
		return read()
	}
	return err
}
