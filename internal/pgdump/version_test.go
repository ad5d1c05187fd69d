package pgdump_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hubexport/hubexport/internal/pgdump"
	"github.com/hubexport/hubexport/internal/testenv"
)

// fakeTool writes an executable script that prints version and records its arguments.
func fakeTool(t *testing.T, name, version string) (path, argsLog string) {
	t.Helper()
	dir := t.TempDir()
	path = filepath.Join(dir, name)
	argsLog = filepath.Join(dir, "args")
	script := "#!/bin/sh\necho \"$@\" >> '" + argsLog + "'\necho '" + name + " (PostgreSQL) " + version + "'\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, argsLog
}

func TestOlderPgDumpIsRefused(t *testing.T) {
	t.Parallel()
	c := parse(t, seededDB(t))
	major, err := pgdump.ServerMajor(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	old, argsLog := fakeTool(t, "pg_dump", "12.3")
	_, err = pgdump.FindTools(t.Context(), major, pgdump.ToolConfig{PgDumpPath: old})
	e := wantCode(t, err, "pg_dump_too_old")
	for _, want := range []string{"pg_dump 12.3", old, "PostgreSQL " + strconv.Itoa(major) + " server", "postgresql-client-" + strconv.Itoa(major), "PG_DUMP_PATH"} {
		if !strings.Contains(e.Message, want) {
			t.Errorf("message lacks %q: %s", want, e.Message)
		}
	}
	// Refused at once: the script only ever answered --version.
	got, _ := os.ReadFile(argsLog)
	if strings.TrimSpace(string(got)) != "--version" {
		t.Fatalf("the old pg_dump was run with %q", got)
	}
}

func TestFindToolsPicksTheServersMajor(t *testing.T) {
	t.Parallel()
	c := parse(t, testenv.Postgres(t))
	major, err := pgdump.ServerMajor(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	tl, err := pgdump.FindTools(t.Context(), major, pgdump.ToolConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if tl.PgDump.Version.Major < major || tl.PgRestore.Version.Major < major {
		t.Fatalf("picked %+v for a PostgreSQL %d server", tl, major)
	}
	if want := "/usr/lib/postgresql/" + strconv.Itoa(major) + "/bin/pg_dump"; isFile(want) && tl.PgDump.Path != want {
		t.Errorf("picked %s over %s", tl.PgDump.Path, want)
	}

	// A newer pg_restore set by path is taken.
	newer, _ := fakeTool(t, "pg_restore", strconv.Itoa(major+1)+".0")
	tl, err = pgdump.FindTools(t.Context(), major, pgdump.ToolConfig{PgRestorePath: newer})
	if err != nil || tl.PgRestore.Path != newer || tl.PgRestore.Version.Text != strconv.Itoa(major+1)+".0" {
		t.Fatalf("FindTools with PG_RESTORE_PATH: %+v, %v", tl, err)
	}
}

// A server newer than every installed client: the one on PATH is named as too old.
func TestFindToolsForAFutureServer(t *testing.T) {
	if _, err := exec.LookPath("pg_dump"); err == nil {
		_, err := pgdump.FindTools(t.Context(), 99, pgdump.ToolConfig{})
		e := wantCode(t, err, "pg_dump_too_old")
		if !strings.Contains(e.Message, "postgresql-client-99") {
			t.Fatalf("message: %s", e.Message)
		}
	}

	t.Setenv("PATH", t.TempDir())
	_, err := pgdump.FindTools(t.Context(), 99, pgdump.ToolConfig{})
	e := wantCode(t, err, "pg_dump_not_found")
	if !strings.Contains(e.Message, "/usr/lib/postgresql/99/bin") || !strings.Contains(e.Message, "PG_DUMP_PATH") {
		t.Fatalf("message: %s", e.Message)
	}
}

func TestFindToolsRejectsABrokenPath(t *testing.T) {
	t.Parallel()
	_, err := pgdump.FindTools(t.Context(), 15, pgdump.ToolConfig{PgDumpPath: "/nonexistent/pg_dump"})
	wantCode(t, err, "pg_dump_not_found")
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}
