package pgdump

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/hubexport/hubexport/internal/export"
)

// Mode is what a backup leaves out (hub-facts §3.2).
type Mode string

const (
	ModeFull        Mode = "full"         // everything
	ModeExcludeLogs Mode = "exclude_logs" // message_request's schema without its rows
	ModeLedgerOnly  Mode = "ledger_only"  // no message_request table at all
)

// LogsTable is the request log table the modes leave out.
const LogsTable = "message_request"

// ParseMode accepts the API's mode names; "" is full.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case "":
		return ModeFull, nil
	case ModeFull, ModeExcludeLogs, ModeLedgerOnly:
		return m, nil
	}
	return "", export.Invalid("params.mode", "must be full, exclude_logs or ledger_only, not %q", s)
}

// FileSuffix is CCH's filename suffix for the mode ("", "_no-logs", "_ledger-only").
func (m Mode) FileSuffix() string {
	switch m {
	case ModeExcludeLogs:
		return "_no-logs"
	case ModeLedgerOnly:
		return "_ledger-only"
	}
	return ""
}

// DumpOptions says what to dump.
type DumpOptions struct {
	Conn Conn
	Mode Mode
	// ExcludeSchemas are left out whole (--exclude-schema), e.g. the service's own schema,
	// which a restore would otherwise roll back along with the hub's tables.
	ExcludeSchemas []string
	// Snapshot, when set, is a snapshot exported by a transaction that stays open until the
	// dump ends (--snapshot): the dump reads exactly what that transaction sees.
	Snapshot string
	// OnProgress, when set, is called after each write to w with the bytes written so far.
	OnProgress func(bytes int64)
}

// DumpStats describes a finished dump.
type DumpStats struct {
	Bytes    int64
	Duration time.Duration
}

// dumpArgs is pg_dump's argument list. It never holds the password.
func dumpArgs(o DumpOptions) []string {
	a := append([]string{"--format=custom", "--verbose", "--no-password"}, o.Conn.args()...)
	switch o.Mode {
	case ModeExcludeLogs:
		a = append(a, "--exclude-table-data="+LogsTable)
	case ModeLedgerOnly:
		a = append(a, "--exclude-table="+LogsTable)
	}
	for _, s := range o.ExcludeSchemas {
		a = append(a, "--exclude-schema="+s)
	}
	if o.Snapshot != "" {
		a = append(a, "--snapshot="+o.Snapshot)
	}
	return a
}

// Dump runs `pg_dump -Fc` and streams its output to w. When ctx ends the process group is
// killed at once and Dump returns context.Cause(ctx); when w fails, pg_dump is killed and the
// write error is returned wrapped. A failed pg_dump returns an *export.Error with code
// pg_dump_failed whose message carries pg_dump's last error lines. Whatever happens, w may
// have received part of a dump: the caller must not publish it unless Dump returned nil.
func (t *Tools) Dump(ctx context.Context, o DumpOptions, w io.Writer) (DumpStats, error) {
	switch o.Mode {
	case "":
		o.Mode = ModeFull
	case ModeFull, ModeExcludeLogs, ModeLedgerOnly:
	default:
		return DumpStats{}, export.Invalid("params.mode", "must be full, exclude_logs or ledger_only, not %q", o.Mode)
	}
	log := t.log().With("tool", "pg_dump", "pg_dump_version", t.PgDump.Version.Text, "mode", string(o.Mode))
	stderr := newLineWriter(o.Conn.Password, func(line string) {
		log.DebugContext(ctx, "pg_dump_stderr", "line", line)
	})
	cmd := command(ctx, t.PgDump.Path, dumpArgs(o), o.Conn.env(os.Environ()))
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return DumpStats{}, fmt.Errorf("pgdump: pg_dump: %w", err)
	}
	start := time.Now()
	log.InfoContext(ctx, "pg_dump_start", "conn", o.Conn, "path", t.PgDump.Path)
	if err := cmd.Start(); err != nil {
		log.ErrorContext(ctx, "pg_dump_error", "error", err)
		return DumpStats{}, fmt.Errorf("pgdump: start pg_dump: %w", err)
	}

	var n int64
	var writeErr error
	buf := make([]byte, 256<<10)
	for {
		m, rerr := stdout.Read(buf)
		if m > 0 {
			wm, werr := w.Write(buf[:m])
			n += int64(wm)
			if werr == nil && wm < m {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				writeErr = werr
				_ = killGroup(cmd)
				break
			}
			if o.OnProgress != nil {
				o.OnProgress(n)
			}
		}
		if rerr != nil {
			break // EOF, or the pipe closed because the process was killed
		}
	}
	waitErr := cmd.Wait()
	stderr.flush()
	stats := DumpStats{Bytes: n, Duration: time.Since(start)}

	switch {
	case ctx.Err() != nil:
		log.WarnContext(ctx, "pg_dump_cancelled", "bytes", n, "duration_ms", stats.Duration.Milliseconds(), "cause", context.Cause(ctx))
		return stats, fmt.Errorf("pgdump: pg_dump cancelled: %w", context.Cause(ctx))
	case writeErr != nil:
		log.ErrorContext(ctx, "pg_dump_error", "error", writeErr, "bytes", n, "stage", "write")
		return stats, fmt.Errorf("pgdump: write dump: %w", writeErr)
	case waitErr != nil:
		tail := stderr.lines()
		log.ErrorContext(ctx, "pg_dump_error", "error", waitErr, "exit_code", exitCode(waitErr), "bytes", n, "stderr_tail", tail)
		return stats, toolFailed("pg_dump", waitErr, tail)
	}
	log.InfoContext(ctx, "pg_dump_complete", "bytes", n, "duration_ms", stats.Duration.Milliseconds())
	return stats, nil
}

// ToolError is a tool's failure: its exit status and the last lines it wrote to stderr.
type ToolError struct {
	Tool     string
	ExitCode int // -1 when it did not exit normally
	Stderr   []string
	Err      error
}

func (e *ToolError) Error() string {
	return fmt.Sprintf("%s: %v: %s", e.Tool, e.Err, strings.Join(e.Stderr, " | "))
}

func (e *ToolError) Unwrap() error { return e.Err }

func toolFailed(tool string, err error, tail []string) error {
	msg := fmt.Sprintf("%s failed (%v)", tool, err)
	if lines := errorLines(tail); len(lines) > 0 {
		msg += ": " + strings.Join(lines, "; ")
	}
	return &export.Error{Kind: export.KindInternal, Code: tool + "_failed", Message: msg,
		Err: &ToolError{Tool: tool, ExitCode: exitCode(err), Stderr: tail, Err: err}}
}
