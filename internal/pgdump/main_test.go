package pgdump_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hubexport/hubexport/internal/export"
	"github.com/hubexport/hubexport/internal/pgdump"
	"github.com/hubexport/hubexport/internal/seed"
	"github.com/hubexport/hubexport/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var seedNow = time.Date(2026, 1, 29, 10, 30, 0, 0, time.UTC)

// seededDB returns the DSN of a fresh copy of a small seeded hub database.
func seededDB(t *testing.T) string {
	t.Helper()
	return testenv.PostgresFrom(t, "pgdump-seeded", func(ctx context.Context, dsn string) error {
		pool, err := pgxpool.New(ctx, dsn)
		if err != nil {
			return err
		}
		defer pool.Close()
		_, err = seed.Run(ctx, pool, seed.Options{Rows: 2000, Seed: 4, Now: seedNow})
		return err
	})
}

func parse(t *testing.T, dsn string) pgdump.Conn {
	t.Helper()
	c, err := pgdump.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("ParseDSN: %v", err)
	}
	return c
}

// logBuffer is a debug-level JSON log the test can read back.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newLog() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// tools resolves the client programs for the test server's version.
func tools(t *testing.T, c pgdump.Conn) (*pgdump.Tools, *logBuffer) {
	t.Helper()
	major, err := pgdump.ServerMajor(t.Context(), c)
	if err != nil {
		t.Fatalf("ServerMajor: %v", err)
	}
	log, buf := newLog()
	tl, err := pgdump.FindTools(t.Context(), major, pgdump.ToolConfig{Log: log})
	if err != nil {
		t.Fatalf("FindTools: %v", err)
	}
	return tl, buf
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// tableState is one table as a user would check it after a restore.
type tableState struct {
	Rows int64
	MD5  string
}

// snapshot reads every user table's row count and a checksum over its rows.
func snapshot(t *testing.T, dsn string) map[string]tableState {
	t.Helper()
	conn := connect(t, dsn)
	rows, err := conn.Query(t.Context(), `SELECT quote_ident(table_schema) || '.' || quote_ident(table_name)
		FROM information_schema.tables
		WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')
		ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]tableState, len(tables))
	for _, tbl := range tables {
		var s tableState
		var sum *string
		q := fmt.Sprintf(`SELECT count(*), md5(string_agg(t::text, ',' ORDER BY t::text)) FROM %s t`, tbl)
		if err := conn.QueryRow(t.Context(), q).Scan(&s.Rows, &sum); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if sum != nil {
			s.MD5 = *sum
		}
		out[tbl] = s
	}
	return out
}

func compareSnapshots(t *testing.T, got, want map[string]tableState) {
	t.Helper()
	for _, tbl := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[tbl]
		switch {
		case !ok:
			t.Errorf("table %s is missing after the restore", tbl)
		case g != want[tbl]:
			t.Errorf("table %s: got %d rows (md5 %s), want %d rows (md5 %s)", tbl, g.Rows, g.MD5, want[tbl].Rows, want[tbl].MD5)
		}
	}
	for tbl := range got {
		if _, ok := want[tbl]; !ok {
			t.Errorf("table %s should not exist after the restore", tbl)
		}
	}
}

// dumpToFile dumps c in mode into a file of the test's temporary directory.
func dumpToFile(t *testing.T, tl *pgdump.Tools, c pgdump.Conn, mode pgdump.Mode) (string, pgdump.DumpStats) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "backup"+mode.FileSuffix()+".dump")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stats, err := tl.Dump(t.Context(), pgdump.DumpOptions{Conn: c, Mode: mode}, f)
	if err != nil {
		t.Fatalf("Dump %s: %v", mode, err)
	}
	return path, stats
}

func wantCode(t *testing.T, err error, code string) *export.Error {
	t.Helper()
	var e *export.Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v (%T), want an *export.Error with code %s", err, err, code)
	}
	if e.Code != code {
		t.Fatalf("got code %s (%s), want %s", e.Code, e.Message, code)
	}
	return e
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	return port
}

// children lists this test binary's child processes running the named program: their pid,
// argv and environment, from /proc.
type child struct {
	PID  int
	Argv []string
	Env  []string
}

func children(t *testing.T, program string) []child {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []child
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// "pid (comm) state ppid ...": comm may hold spaces and parentheses.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) < 2 || fields[1] != strconv.Itoa(os.Getpid()) || fields[0] == "Z" {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		argv := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if len(argv) == 0 || filepath.Base(argv[0]) != program {
			continue
		}
		environ, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		out = append(out, child{PID: pid, Argv: argv, Env: strings.Split(string(environ), "\x00")})
	}
	return out
}

// childWith waits up to d for a child running program whose environment holds marker (each
// test marks its tool with a unique PGAPPNAME, since parallel tests run tools too).
func childWith(t *testing.T, program, marker string, d time.Duration) child {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		for _, c := range children(t, program) {
			if slices.Contains(c.Env, marker) {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s child with %s after %v", program, marker, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// gone reports whether process pid has exited and been reaped.
func gone(pid int) bool {
	_, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid)))
	return errors.Is(err, os.ErrNotExist)
}
