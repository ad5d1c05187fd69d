package pgdump

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/hubexport/hubexport/internal/export"
)

// WithDatabase is c connected to database name instead.
func (c Conn) WithDatabase(name string) Conn {
	c.Database = name
	return c
}

// CreateDatabase creates the empty database name (from template0) on the
// server admin reaches, first dropping a database of that name left by an
// earlier attempt.
func CreateDatabase(ctx context.Context, admin Conn, name string) error {
	if err := DropDatabase(ctx, admin, name); err != nil {
		return err
	}
	conn, err := Connect(ctx, admin)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE template0"); err != nil {
		return fmt.Errorf("pgdump: create database %s: %w", name, err)
	}
	return nil
}

// DropDatabase drops database name if it exists, ending its sessions first.
func DropDatabase(ctx context.Context, admin Conn, name string) error {
	conn, err := Connect(ctx, admin)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var num int
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&num); err != nil {
		return fmt.Errorf("pgdump: drop database %s: %w", name, err)
	}
	id := pgx.Identifier{name}.Sanitize()
	if majorOfNum(num) >= 13 {
		_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+id+" WITH (FORCE)")
	} else {
		_, err = conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name)
		if err == nil {
			_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+id)
		}
	}
	if err != nil {
		return fmt.Errorf("pgdump: drop database %s: %w", name, err)
	}
	return nil
}

// ListDatabases lists the databases on admin's server whose name starts
// with prefix.
func ListDatabases(ctx context.Context, admin Conn, prefix string) ([]string, error) {
	conn, err := Connect(ctx, admin)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	pattern := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(prefix) + "%"
	rows, err := conn.Query(ctx, "SELECT datname FROM pg_catalog.pg_database WHERE datname LIKE $1 ORDER BY 1", pattern)
	if err != nil {
		return nil, fmt.Errorf("pgdump: list databases: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("pgdump: list databases: %w", err)
	}
	return names, nil
}

// CountTables counts the rows of each table in the database c reaches;
// -1 for a table that is not there.
func CountTables(ctx context.Context, c Conn, tables []export.ManifestTable) ([]int64, error) {
	conn, err := Connect(ctx, c)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	out := make([]int64, len(tables))
	for i, t := range tables {
		var exists bool
		err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", pgx.Identifier{t.Schema, t.Name}.Sanitize()).Scan(&exists)
		if err != nil {
			return nil, fmt.Errorf("pgdump: count rows of %s: %w", t.QualifiedName(), err)
		}
		if !exists {
			out[i] = -1
			continue
		}
		if out[i], err = countRows(ctx, conn, t.Schema, t.Name); err != nil {
			return nil, fmt.Errorf("pgdump: %w", err)
		}
	}
	return out, nil
}

// ErrCheckFalse: a check ran and did not return true.
var ErrCheckFalse = errors.New("pgdump: check did not return true")

// RunChecks runs each SELECT on one connection to c, in a read-only
// transaction of its own with statement_timeout set, and reports for each
// nil when it returned a single true, ErrCheckFalse (wrapped, saying what
// it returned) or its error. err is for the connection alone.
func RunChecks(ctx context.Context, c Conn, checks []string, statementTimeoutMS int) (results []error, err error) {
	conn, err := Connect(ctx, c)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, sql := range checks {
		results = append(results, runCheck(ctx, conn, sql, statementTimeoutMS))
		if ctx.Err() != nil {
			return results, ctx.Err()
		}
	}
	return results, nil
}

func runCheck(ctx context.Context, conn *pgx.Conn, sql string, timeoutMS int) error {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL statement_timeout = %d", timeoutMS)); err != nil {
		return err
	}
	rows, err := tx.Query(ctx, sql, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return err
	}
	defer rows.Close()
	var got []string
	ok := false
	n := 0
	for rows.Next() {
		n++
		vals, err := rows.Values()
		if err != nil {
			return err
		}
		if n == 1 && len(vals) == 1 {
			b, isBool := vals[0].(bool)
			ok = isBool && b
		}
		if len(got) < 3 {
			got = append(got, fmt.Sprint(vals...))
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if n != 1 || !ok {
		return fmt.Errorf("%w: it returned %d row(s) %v; it must return one row with one column, true", ErrCheckFalse, n, got)
	}
	return nil
}
