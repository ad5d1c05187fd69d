package pgdump_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubexport/hubexport/internal/export"
	"github.com/hubexport/hubexport/internal/pgdump"
	"github.com/hubexport/hubexport/internal/testenv"
)

func TestServerMajor(t *testing.T) {
	t.Parallel()
	c := parse(t, testenv.Postgres(t))
	major, err := pgdump.ServerMajor(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	var num int
	if err := connect(t, testenv.PostgresServer(t)).QueryRow(t.Context(), "SELECT current_setting('server_version_num')::int").Scan(&num); err != nil {
		t.Fatal(err)
	}
	if major != num/10000 {
		t.Fatalf("ServerMajor = %d, server_version_num %d", major, num)
	}
}

// TestRoundTrip backs up a seeded hub in each mode and restores it into a fresh database: the
// table list, each table's row count and a checksum over its rows match, except for what the
// mode leaves out.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	src := seededDB(t)
	srcConn := parse(t, src)
	tl, _ := tools(t, srcConn)
	want := snapshot(t, src)
	if want["public.message_request"].Rows == 0 || want["public.usage_ledger"].Rows == 0 {
		t.Fatalf("the seeded database has no requests: %v", want)
	}

	for _, mode := range []pgdump.Mode{pgdump.ModeFull, pgdump.ModeExcludeLogs, pgdump.ModeLedgerOnly} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			path, stats := dumpToFile(t, tl, srcConn, mode)
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if stats.Bytes == 0 || stats.Bytes != fi.Size() {
				t.Fatalf("stats say %d bytes, the file has %d", stats.Bytes, fi.Size())
			}

			toc, err := tl.ListFile(t.Context(), path)
			if err != nil {
				t.Fatalf("ListFile: %v", err)
			}
			if toc.Format != "CUSTOM" || len(toc.Entries) < 20 {
				t.Fatalf("listing: format %q, %d entries", toc.Format, len(toc.Entries))
			}
			hasTable := toc.Has("TABLE", "public", "message_request")
			hasData := toc.Has("TABLE DATA", "public", "message_request")
			if hasTable != (mode != pgdump.ModeLedgerOnly) || hasData != (mode == pgdump.ModeFull) {
				t.Fatalf("message_request in the listing: table %v, data %v", hasTable, hasData)
			}
			if !toc.Has("TABLE DATA", "public", "usage_ledger") {
				t.Fatal("the listing has no usage_ledger data")
			}

			dst := testenv.Postgres(t)
			res, err := tl.Restore(t.Context(), pgdump.RestoreOptions{Target: parse(t, dst)}, path)
			if err != nil {
				t.Fatalf("Restore: %v", err)
			}
			if res.Errors != 0 || res.Ignored != 0 || res.ExitCode != 0 {
				t.Fatalf("restore into an empty database: %+v", res)
			}

			expect := make(map[string]tableState, len(want))
			for k, v := range want {
				expect[k] = v
			}
			switch mode {
			case pgdump.ModeExcludeLogs:
				expect["public.message_request"] = tableState{}
			case pgdump.ModeLedgerOnly:
				delete(expect, "public.message_request")
			}
			compareSnapshots(t, snapshot(t, dst), expect)
		})
	}
}

func TestDumpProgressAndLogs(t *testing.T) {
	t.Parallel()
	c := parse(t, seededDB(t))
	tl, logs := tools(t, c)
	var calls, last atomic.Int64
	var w countWriter
	stats, err := tl.Dump(t.Context(), pgdump.DumpOptions{Conn: c, OnProgress: func(n int64) {
		if n < last.Load() {
			t.Errorf("progress went back from %d to %d", last.Load(), n)
		}
		last.Store(n)
		calls.Add(1)
	}}, &w)
	if err != nil {
		t.Fatal(err)
	}
	if calls.Load() == 0 || last.Load() != stats.Bytes || w.n != stats.Bytes {
		t.Fatalf("progress: %d calls, last %d; wrote %d; stats %d", calls.Load(), last.Load(), w.n, stats.Bytes)
	}
	out := logs.String()
	for _, ev := range []string{`"msg":"pg_dump_start"`, `"msg":"pg_dump_complete"`, `"msg":"pg_dump_stderr"`} {
		if !strings.Contains(out, ev) {
			t.Errorf("log lacks %s:\n%s", ev, out)
		}
	}
}

type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

func TestDumpFailureCarriesStderr(t *testing.T) {
	t.Parallel()
	c := parse(t, testenv.Postgres(t))
	tl, logs := tools(t, c)
	c.Database = "no_such_db_" + strings.ReplaceAll(t.Name(), "/", "_")
	_, err := tl.Dump(t.Context(), pgdump.DumpOptions{Conn: c}, &countWriter{})
	e := wantCode(t, err, "pg_dump_failed")
	if !strings.Contains(e.Message, `database "`+c.Database+`" does not exist`) {
		t.Fatalf("message does not say why: %s", e.Message)
	}
	var te *pgdump.ToolError
	if !errors.As(err, &te) || te.ExitCode != 1 || len(te.Stderr) == 0 {
		t.Fatalf("tool error: %+v", te)
	}
	if !strings.Contains(logs.String(), `"msg":"pg_dump_error"`) {
		t.Fatalf("no pg_dump_error event:\n%s", logs)
	}
}

// TestDumpCancelKillsPgDump blocks pg_dump on a table lock, cancels, and expects Dump back and
// the process gone at once.
func TestDumpCancelKillsPgDump(t *testing.T) {
	t.Parallel()
	dsn := seededDB(t)
	c := parse(t, dsn)
	tl, logs := tools(t, c)
	locker := connect(t, dsn)
	tx, err := locker.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(t.Context(), "LOCK TABLE message_request IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}

	app := "hxt_cancel_" + strings.ReplaceAll(t.Name(), "/", "_")
	c.Params = map[string]string{"application_name": app}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := tl.Dump(ctx, pgdump.DumpOptions{Conn: c}, &countWriter{})
		done <- err
	}()
	proc := childWith(t, "pg_dump", "PGAPPNAME="+app, 10*time.Second)
	waitLockWait(t, dsn, app)

	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Dump after cancel: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Dump did not return within 3s of the cancel")
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Dump took %v to return after the cancel", took)
	}
	if !gone(proc.PID) {
		t.Fatalf("pg_dump (pid %d) survived the cancel", proc.PID)
	}
	if !strings.Contains(logs.String(), `"msg":"pg_dump_cancelled"`) {
		t.Fatalf("no pg_dump_cancelled event:\n%s", logs)
	}
}

// waitLockWait waits until the backend of application app waits for a lock.
func waitLockWait(t *testing.T, dsn, app string) {
	t.Helper()
	conn := connect(t, dsn)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		err := conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'", app).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("pg_dump never waited for the table lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var errSink = errors.New("sink: disk on fire")

type failingWriter struct{ writes int }

func (w *failingWriter) Write(p []byte) (int, error) {
	w.writes++
	return 0, errSink
}

func TestDumpWriteErrorStopsPgDump(t *testing.T) {
	t.Parallel()
	c := parse(t, seededDB(t))
	tl, _ := tools(t, c)
	app := "hxt_writefail"
	c.Params = map[string]string{"application_name": app}
	start := time.Now()
	w := &failingWriter{}
	_, err := tl.Dump(t.Context(), pgdump.DumpOptions{Conn: c}, w)
	if !errors.Is(err, errSink) {
		t.Fatalf("Dump: %v, want the writer's error", err)
	}
	if w.writes != 1 {
		t.Fatalf("Dump wrote %d times after the first write failed", w.writes)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Dump took %v", took)
	}
	for _, ch := range children(t, "pg_dump") {
		for _, kv := range ch.Env {
			if kv == "PGAPPNAME="+app {
				t.Fatalf("pg_dump pid %d still runs", ch.PID)
			}
		}
	}
}

func TestDumpRejectsUnknownMode(t *testing.T) {
	t.Parallel()
	tl := &pgdump.Tools{PgDump: pgdump.Tool{Path: "/nonexistent/pg_dump"}}
	_, err := tl.Dump(t.Context(), pgdump.DumpOptions{Mode: "everything"}, &countWriter{})
	if export.KindOf(err) != export.KindInvalid {
		t.Fatalf("got %v", err)
	}
	if _, err := pgdump.ParseMode("excludeLogs"); err == nil {
		t.Fatal("ParseMode accepted CCH's camelCase name")
	}
}
