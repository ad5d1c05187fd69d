package pgretry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestConnectionLost(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct {
		err  error
		want bool
	}{
		"admin shutdown":       {&pgconn.PgError{Severity: "FATAL", Code: "57P01"}, true},
		"crash shutdown":       {&pgconn.PgError{Code: "57P02"}, true},
		"cannot connect now":   {fmt.Errorf("store: job x: %w", &pgconn.PgError{Code: "57P03"}), true},
		"connection failure":   {&pgconn.PgError{Code: "08006"}, true},
		"query canceled":       {&pgconn.PgError{Code: "57014"}, false},
		"unique violation":     {&pgconn.PgError{Code: "23505"}, false},
		"closed under a query": {fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		"no rows":              {pgx.ErrNoRows, false},
		"deadline":             {context.DeadlineExceeded, false},
		"nil":                  {nil, false},
	} {
		if got := ConnectionLost(c.err); got != c.want {
			t.Errorf("%s: ConnectionLost(%v) = %v, want %v", name, c.err, got, c.want)
		}
	}
}

type resets int

func (r *resets) Reset() { *r++ }

func TestRead(t *testing.T) {
	t.Parallel()
	lost := &pgconn.PgError{Severity: "FATAL", Code: "57P01", Message: "terminating connection due to administrator command"}
	for name, c := range map[string]struct {
		errs       []error
		want       error
		runs, rsts int
	}{
		"ok":                   {[]error{nil}, nil, 1, 0},
		"lost once":            {[]error{lost, nil}, nil, 2, 1},
		"lost twice":           {[]error{lost, lost, nil}, lost, 2, 1},
		"other error no retry": {[]error{pgx.ErrNoRows, nil}, pgx.ErrNoRows, 1, 0},
	} {
		var r resets
		runs := 0
		err := Read(context.Background(), &r, func() error {
			runs++
			return c.errs[runs-1]
		})
		if !errors.Is(err, c.want) || runs != c.runs || int(r) != c.rsts {
			t.Errorf("%s: %v after %d runs and %d resets, want %v after %d and %d", name, err, runs, r, c.want, c.runs, c.rsts)
		}
	}
	var r resets
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Read(ctx, &r, func() error { return lost }); !errors.Is(err, lost) || r != 0 {
		t.Errorf("canceled context: %v, %d resets", err, r)
	}
}
