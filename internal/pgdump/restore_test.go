package pgdump_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/hubexport/hubexport/internal/export"
	"github.com/hubexport/hubexport/internal/pgdump"
	"github.com/hubexport/hubexport/internal/testenv"
)

func TestListFromReaderMatchesFile(t *testing.T) {
	t.Parallel()
	c := parse(t, seededDB(t))
	tl, _ := tools(t, c)
	path, _ := dumpToFile(t, tl, c, pgdump.ModeFull)
	fromFile, err := tl.ListFile(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fromReader, err := tl.List(t.Context(), f)
	if err != nil {
		t.Fatal(err)
	}
	if len(fromReader.Entries) != len(fromFile.Entries) || len(fromFile.Entries) == 0 {
		t.Fatalf("entries: reader %d, file %d", len(fromReader.Entries), len(fromFile.Entries))
	}
	if fromFile.Database != c.Database || fromFile.DumpedBy == "" || fromFile.DumpedFrom == "" {
		t.Fatalf("header: %+v", fromFile)
	}
}

// trapTool is a pg_restore that records that it ran.
func trapTool(t *testing.T) (*pgdump.Tools, string) {
	t.Helper()
	dir := t.TempDir()
	ran := filepath.Join(dir, "ran")
	path := filepath.Join(dir, "pg_restore")
	if err := os.WriteFile(path, []byte("#!/bin/sh\ntouch '"+ran+"'\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return &pgdump.Tools{PgRestore: pgdump.Tool{Path: path}, PgDump: pgdump.Tool{Path: path}}, ran
}

func TestNotADumpIsRefusedBeforeAnythingRuns(t *testing.T) {
	t.Parallel()
	tl, ran := trapTool(t)
	dir := t.TempDir()
	cases := map[string]struct {
		content []byte
		why     string
	}{
		"empty":   {nil, "empty"},
		"sql":     {[]byte("--\n-- PostgreSQL database dump\n--\nSET statement_timeout = 0;\n"), "plain SQL"},
		"gzip":    {[]byte{0x1f, 0x8b, 0x08, 0, 0, 0}, "gzip"},
		"garbage": {[]byte("hello, this is not a dump"), "does not start with PGDMP"},
		"short":   {[]byte("PGD"), "does not start with PGDMP"},
	}
	for name, tc := range cases {
		path := filepath.Join(dir, name+".dump")
		if err := os.WriteFile(path, tc.content, 0o644); err != nil {
			t.Fatal(err)
		}
		target := pgdump.Conn{Host: "127.0.0.1", Database: "x"}
		for op, run := range map[string]func() error{
			"Restore": func() error {
				_, err := tl.Restore(t.Context(), pgdump.RestoreOptions{Target: target}, path)
				return err
			},
			"DryRun":   func() error { _, err := tl.Restore(t.Context(), pgdump.RestoreOptions{DryRun: true}, path); return err },
			"ListFile": func() error { _, err := tl.ListFile(t.Context(), path); return err },
			"List":     func() error { _, err := tl.List(t.Context(), bytes.NewReader(tc.content)); return err },
		} {
			err := run()
			if !errors.Is(err, pgdump.ErrNotADump) {
				t.Fatalf("%s %s: %v, want not_a_dump", op, name, err)
			}
			if e := wantCode(t, err, "not_a_dump"); !strings.Contains(e.Message, tc.why) || export.KindOf(err) != export.KindInvalid {
				t.Errorf("%s %s: message %q does not say %q", op, name, e.Message, tc.why)
			}
		}
	}
	if _, err := os.Stat(ran); err == nil {
		t.Fatal("pg_restore ran on a file that is not a dump")
	}
}

func TestDryRunTouchesNothing(t *testing.T) {
	t.Parallel()
	c := parse(t, seededDB(t))
	tl, _ := tools(t, c)
	path, _ := dumpToFile(t, tl, c, pgdump.ModeFull)
	// The target does not exist: a dry run never connects.
	target := pgdump.Conn{Host: "127.0.0.1", Port: closedPort(t), User: "nobody", Database: "nothing"}
	res, err := tl.Restore(t.Context(), pgdump.RestoreOptions{Target: target, DryRun: true, CleanFirst: true}, path)
	if err != nil {
		t.Fatal(err)
	}
	if res.TOC == nil || !res.TOC.Has("TABLE DATA", "public", "message_request") || res.ExitCode != 0 {
		t.Fatalf("dry run: %+v", res)
	}
}

func TestRestoreSkipLogsAndClean(t *testing.T) {
	t.Parallel()
	src := seededDB(t)
	c := parse(t, src)
	tl, _ := tools(t, c)
	path, _ := dumpToFile(t, tl, c, pgdump.ModeFull)
	want := snapshot(t, src)

	t.Run("SkipLogs", func(t *testing.T) {
		t.Parallel()
		dst := testenv.Postgres(t)
		if _, err := tl.Restore(t.Context(), pgdump.RestoreOptions{Target: parse(t, dst), SkipLogs: true}, path); err != nil {
			t.Fatal(err)
		}
		expect := clone(want)
		expect["public.message_request"] = tableState{}
		compareSnapshots(t, snapshot(t, dst), expect)
	})

	t.Run("CleanFirstOverChangedData", func(t *testing.T) {
		t.Parallel()
		dst := testenv.Postgres(t)
		target := parse(t, dst)
		if _, err := tl.Restore(t.Context(), pgdump.RestoreOptions{Target: target}, path); err != nil {
			t.Fatal(err)
		}
		conn := connect(t, dst)
		if _, err := conn.Exec(t.Context(), "DELETE FROM usage_ledger WHERE id % 2 = 0; UPDATE users SET name = 'changed'"); err != nil {
			t.Fatal(err)
		}
		conn.Close(t.Context())
		res, err := tl.Restore(t.Context(), pgdump.RestoreOptions{Target: target, CleanFirst: true}, path)
		if err != nil || res.Errors != 0 || res.Ignored != 0 {
			t.Fatalf("clean restore: %+v, %v", res, err)
		}
		compareSnapshots(t, snapshot(t, dst), want)
	})

	// Without --clean every object already exists and every row is a duplicate: CCH counts
	// those errors as ignorable, so the restore succeeds and the data is unchanged.
	t.Run("IgnorableErrorsSucceed", func(t *testing.T) {
		t.Parallel()
		dst := testenv.Postgres(t)
		target := parse(t, dst)
		if _, err := tl.Restore(t.Context(), pgdump.RestoreOptions{Target: target}, path); err != nil {
			t.Fatal(err)
		}
		res, err := tl.Restore(t.Context(), pgdump.RestoreOptions{Target: target}, path)
		if err != nil {
			t.Fatalf("second restore: %v (%+v)", err, res)
		}
		if res.ExitCode != 1 || res.Ignored == 0 || res.Errors != 0 || res.FirstFatal != "" {
			t.Fatalf("second restore: %+v", res)
		}
		compareSnapshots(t, snapshot(t, dst), want)
	})
}

func clone(m map[string]tableState) map[string]tableState {
	out := make(map[string]tableState, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestRestoreFatalErrors(t *testing.T) {
	t.Parallel()
	c := parse(t, seededDB(t))
	tl, logs := tools(t, c)
	path, _ := dumpToFile(t, tl, c, pgdump.ModeLedgerOnly)
	t.Cleanup(func() {
		for _, ev := range []string{`"msg":"pg_restore_start"`, `"msg":"pg_restore_error"`, `"msg":"pg_restore_stderr"`} {
			if !strings.Contains(logs.String(), ev) {
				t.Errorf("log lacks %s", ev)
			}
		}
	})

	t.Run("UnreachableTarget", func(t *testing.T) {
		t.Parallel()
		target := pgdump.Conn{Host: "127.0.0.1", Port: closedPort(t), User: "postgres", Database: "hub"}
		res, err := tl.Restore(t.Context(), pgdump.RestoreOptions{Target: target, CleanFirst: true}, path)
		e := wantCode(t, err, "pg_restore_failed")
		if e.Kind != export.KindUnavailable {
			t.Errorf("kind %v, want unavailable", e.Kind)
		}
		if res.Errors != 1 || !strings.Contains(res.FirstFatal, "Connection refused") || !strings.Contains(e.Message, strings.TrimPrefix(res.FirstFatal, "pg_restore: error: ")) {
			t.Fatalf("result %+v, message %q", res, e.Message)
		}
	})

	t.Run("MissingDatabase", func(t *testing.T) {
		t.Parallel()
		target := c
		target.Database = "no_such_database"
		res, err := tl.Restore(t.Context(), pgdump.RestoreOptions{Target: target}, path)
		wantCode(t, err, "pg_restore_failed")
		if !strings.Contains(res.FirstFatal, `database "no_such_database" does not exist`) {
			t.Fatalf("result %+v", res)
		}
	})

	// A role that may not create tables in public (the default since PostgreSQL 15; granted
	// away explicitly for older servers): permission denied is fatal.
	t.Run("PermissionDenied", func(t *testing.T) {
		t.Parallel()
		dst := testenv.Postgres(t)
		role := "hxt_limited_" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "_"))
		admin := connect(t, dst)
		for _, q := range []string{
			"CREATE ROLE " + pgx.Identifier{role}.Sanitize() + " LOGIN",
			"REVOKE CREATE ON SCHEMA public FROM PUBLIC",
		} {
			if _, err := admin.Exec(t.Context(), q); err != nil {
				t.Fatal(err)
			}
		}
		t.Cleanup(func() {
			// Roles are server-wide; this one owns nothing.
			ctx := context.Background()
			conn, err := pgx.Connect(ctx, testenv.PostgresServer(t))
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close(ctx)
			if _, err := conn.Exec(ctx, "DROP ROLE IF EXISTS "+pgx.Identifier{role}.Sanitize()); err != nil {
				t.Error(err)
			}
		})
		target := parse(t, dst)
		target.User = role
		res, err := tl.Restore(t.Context(), pgdump.RestoreOptions{Target: target, CleanFirst: true}, path)
		e := wantCode(t, err, "pg_restore_failed")
		if res.Errors == 0 || !strings.Contains(res.FirstFatal, "permission denied") || e.Kind != export.KindInternal {
			t.Fatalf("result %+v, error %v", res, err)
		}
	})
}
