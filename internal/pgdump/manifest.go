package pgdump

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/hubexport/hubexport/internal/export"
)

// Connect opens one pgx connection to c (for the manifest, scratch databases
// and drill checks). Errors never quote the password.
func Connect(ctx context.Context, c Conn) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(c.pgxConnString())
	if err != nil {
		// pgx's parse error quotes the connection string; its redaction is best effort.
		if inner := errors.Unwrap(err); inner != nil {
			return nil, fmt.Errorf("pgdump: connection settings: %w", inner)
		}
		return nil, errors.New("pgdump: connection settings rejected")
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgdump: connect to %s: %w", c, err)
	}
	return conn, nil
}

// Snapshot is a read-only REPEATABLE READ transaction whose snapshot is
// exported: pg_dump --snapshot=ID reads exactly the rows it sees, so the
// counts it takes describe the dump exactly, whatever is written meanwhile.
// It must stay open until pg_dump has started; Close ends it.
type Snapshot struct {
	ID   string
	conn *pgx.Conn
	tx   pgx.Tx
}

// OpenSnapshot begins the transaction on c and exports its snapshot.
func OpenSnapshot(ctx context.Context, c Conn) (*Snapshot, error) {
	conn, err := Connect(ctx, c)
	if err != nil {
		return nil, err
	}
	s := &Snapshot{conn: conn}
	s.tx, err = conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err == nil {
		// The transaction sits idle while pg_dump runs: no server timeout
		// may end it.
		_, err = s.tx.Exec(ctx, "SET LOCAL statement_timeout = 0; SET LOCAL idle_in_transaction_session_timeout = 0")
	}
	if err == nil {
		err = s.tx.QueryRow(ctx, "SELECT pg_export_snapshot()").Scan(&s.ID)
	}
	if err != nil {
		s.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("pgdump: export snapshot: %w", err)
	}
	return s, nil
}

// Close ends the transaction and its connection.
func (s *Snapshot) Close(ctx context.Context) {
	if s.tx != nil {
		_ = s.tx.Rollback(ctx)
	}
	_ = s.conn.Close(ctx)
}

// dumpedTablesSQL lists the tables whose rows pg_dump writes: ordinary and
// unlogged tables (partitions included: their rows live there), outside
// the system schemas and the excluded ones, that no extension owns.
// is_logs marks the table the modes' unqualified pattern message_request
// names (pg_dump resolves it through the search path).
const dumpedTablesSQL = `
SELECT n.nspname, c.relname, (c.relname = $2 AND pg_catalog.pg_table_is_visible(c.oid)) AS is_logs
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND c.relpersistence <> 't'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
  AND NOT (n.nspname = ANY($1::text[]))
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1, 2`

// Manifest counts the rows of every table a dump in mode (leaving out
// excludeSchemas) holds, in the snapshot.
func (s *Snapshot) Manifest(ctx context.Context, mode Mode, excludeSchemas []string) (export.BackupManifest, error) {
	m := export.BackupManifest{FormatVersion: export.ManifestFormatVersion, Mode: string(mode), Tables: []export.ManifestTable{}}
	if m.Mode == "" {
		m.Mode = string(ModeFull)
	}
	err := s.tx.QueryRow(ctx, "SELECT current_setting('server_version'), current_setting('server_version_num')::int, current_database()").
		Scan(&m.ServerVersion, &m.ServerVersionNum, &m.Database)
	if err != nil {
		return m, fmt.Errorf("pgdump: manifest: server version: %w", err)
	}
	if excludeSchemas == nil {
		excludeSchemas = []string{}
	}
	rows, err := s.tx.Query(ctx, dumpedTablesSQL, excludeSchemas, LogsTable)
	if err != nil {
		return m, fmt.Errorf("pgdump: manifest: list tables: %w", err)
	}
	type table struct {
		export.ManifestTable
		logs bool
	}
	var tables []table
	for rows.Next() {
		var t table
		if err := rows.Scan(&t.Schema, &t.Name, &t.logs); err != nil {
			rows.Close()
			return m, fmt.Errorf("pgdump: manifest: list tables: %w", err)
		}
		tables = append(tables, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return m, fmt.Errorf("pgdump: manifest: list tables: %w", err)
	}
	for _, t := range tables {
		switch {
		case t.logs && m.Mode == string(ModeLedgerOnly):
			continue // not in the dump at all
		case t.logs && m.Mode == string(ModeExcludeLogs):
			t.DataExcluded = true
		default:
			if t.Rows, err = countRows(ctx, s.tx, t.Schema, t.Name); err != nil {
				return m, fmt.Errorf("pgdump: manifest: %w", err)
			}
		}
		m.Tables = append(m.Tables, t.ManifestTable)
		m.TotalRows += t.Rows
	}
	return m, nil
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// countRows counts the rows of schema.name itself (ONLY: an inheritance
// parent's count leaves out its children, which are counted on their own).
func countRows(ctx context.Context, q querier, schema, name string) (int64, error) {
	var n int64
	err := q.QueryRow(ctx, "SELECT count(*) FROM ONLY "+pgx.Identifier{schema, name}.Sanitize()).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count rows of %s.%s: %w", schema, name, err)
	}
	return n, nil
}
