package pgdump

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/hubexport/hubexport/internal/export"
)

// RestoreOptions says how to restore.
type RestoreOptions struct {
	Target Conn
	// CleanFirst drops the dump's objects before recreating them (--clean --if-exists
	// --no-owner).
	CleanFirst bool
	// SkipLogs restores message_request's schema without its rows.
	SkipLogs bool
	// DryRun only lists the dump; nothing connects to Target.
	DryRun bool
	// NoOwner restores every object as the connecting role, without the dump's owners and
	// grants (--no-owner --no-privileges): a restore drill's role may only have CREATEDB.
	NoOwner bool
	// ExcludeSchemas are not restored (--exclude-schema).
	ExcludeSchemas []string
	// OnLine, when set, gets each line pg_restore writes (with --verbose, one per object:
	// usable as progress).
	OnLine func(line string)
}

// RestoreResult is what a restore did.
type RestoreResult struct {
	TOC *TOC // the dump's contents, listed before anything ran
	// Errors counts the fatal error lines, Ignored the error lines CCH tolerates (an object
	// that already exists, a duplicate key, a missing role), Warnings the warning lines.
	Errors, Ignored, Warnings int
	FirstFatal                string // the first fatal line, "" when none
	ExitCode                  int
	Duration                  time.Duration
}

// restoreArgs is pg_restore's argument list. It never holds the password.
func restoreArgs(o RestoreOptions, listFile, dumpPath string) []string {
	a := append([]string{"--verbose", "--no-password"}, o.Target.args()...)
	if o.CleanFirst {
		a = append(a, "--clean", "--if-exists")
	}
	if o.CleanFirst || o.NoOwner {
		a = append(a, "--no-owner")
	}
	if o.NoOwner {
		a = append(a, "--no-privileges")
	}
	if listFile != "" {
		a = append(a, "--use-list="+listFile)
	}
	for _, s := range o.ExcludeSchemas {
		a = append(a, "--exclude-schema="+s)
	}
	return append(a, dumpPath)
}

// Restore restores the custom-format dump at dumpPath into o.Target with pg_restore. The file is
// checked (magic bytes, then `pg_restore --list`) before anything connects, so a file that is
// not a dump fails with code not_a_dump and touches nothing.
//
// pg_restore's stderr is classified as CCH does (hub-facts §3.4): exit 0, or exit 1 when every
// error line is ignorable, is success; otherwise Restore returns the result and an
// *export.Error with code pg_restore_failed naming the first fatal line.
func (t *Tools) Restore(ctx context.Context, o RestoreOptions, dumpPath string) (RestoreResult, error) {
	abs, err := filepath.Abs(dumpPath) // a relative path starting with '-' would read as an option
	if err != nil {
		return RestoreResult{}, fmt.Errorf("pgdump: restore: %w", err)
	}
	toc, err := t.ListFile(ctx, abs)
	if err != nil {
		return RestoreResult{}, err
	}
	res := RestoreResult{TOC: toc}
	if o.DryRun {
		return res, nil
	}
	if o.Target.Database == "" {
		return res, export.Invalid("params.target_database_url", "names no database")
	}

	var listFile string
	if o.SkipLogs {
		// pg_restore has no --exclude-table-data (pg_dump has): leave the rows out through an
		// edited table of contents instead.
		if listFile, err = writeList(toc, func(e TOCEntry) bool { return e.Desc == "TABLE DATA" && e.Name == LogsTable }); err != nil {
			return res, err
		}
		defer os.Remove(listFile)
	}

	log := t.log().With("tool", "pg_restore", "pg_restore_version", t.PgRestore.Version.Text)
	var cls classifier
	stderr := newLineWriter(o.Target.Password, func(line string) {
		log.DebugContext(ctx, "pg_restore_stderr", "line", line)
		cls.add(line)
		if o.OnLine != nil {
			o.OnLine(line)
		}
	})
	cmd := command(ctx, t.PgRestore.Path, restoreArgs(o, listFile, abs), o.Target.env(os.Environ()))
	cmd.Stderr = stderr
	start := time.Now()
	log.InfoContext(ctx, "pg_restore_start", "conn", o.Target, "path", t.PgRestore.Path,
		"clean_first", o.CleanFirst, "skip_logs", o.SkipLogs, "toc_entries", len(toc.Entries))
	err = cmd.Run()
	stderr.flush()
	res.Duration = time.Since(start)
	res.ExitCode = exitCode(err)
	if err == nil {
		res.ExitCode = 0
	}
	cls.fill(&res)

	switch {
	case ctx.Err() != nil:
		log.WarnContext(ctx, "pg_restore_cancelled", "duration_ms", res.Duration.Milliseconds(), "cause", context.Cause(ctx))
		return res, fmt.Errorf("pgdump: pg_restore cancelled: %w", context.Cause(ctx))
	case err == nil, res.ExitCode == 1 && res.Errors == 0 && res.Ignored > 0:
		log.InfoContext(ctx, "pg_restore_complete", "exit_code", res.ExitCode, "ignored", res.Ignored,
			"warnings", res.Warnings, "duration_ms", res.Duration.Milliseconds())
		return res, nil
	}
	tail := stderr.lines()
	log.ErrorContext(ctx, "pg_restore_error", "error", err, "exit_code", res.ExitCode, "errors", res.Errors,
		"ignored", res.Ignored, "first_fatal", res.FirstFatal, "stderr_tail", tail)
	kind := export.KindInternal
	if cls.firstCategory == "connect" {
		kind = export.KindUnavailable
	}
	msg := fmt.Sprintf("pg_restore failed (%v)", err)
	if res.FirstFatal != "" {
		msg = fmt.Sprintf("pg_restore failed: %s (%d fatal, %d ignorable errors)", stripProg(res.FirstFatal), res.Errors, res.Ignored)
	} else if lines := errorLines(tail); len(lines) > 0 {
		msg += ": " + strings.Join(lines, "; ")
	}
	return res, &export.Error{Kind: kind, Code: "pg_restore_failed", Message: msg,
		Err: &ToolError{Tool: "pg_restore", ExitCode: res.ExitCode, Stderr: tail, Err: err}}
}

// writeList writes toc as a pg_restore --use-list file with the entries skip picks commented out.
func writeList(toc *TOC, skip func(TOCEntry) bool) (string, error) {
	f, err := os.CreateTemp("", "hubexport-restore-*.list")
	if err != nil {
		return "", fmt.Errorf("pgdump: restore list: %w", err)
	}
	var b strings.Builder
	for _, e := range toc.Entries {
		if skip(e) {
			b.WriteString(";")
		}
		b.WriteString(e.Line)
		b.WriteString("\n")
	}
	_, err = f.WriteString(b.String())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("pgdump: restore list: %w", err)
	}
	return f.Name(), nil
}

// Line classes of pg_restore's stderr, from hub-facts §3.4. Fatal patterns are checked first,
// so a line matching both kinds counts as fatal.
var (
	fatalPatterns = []struct {
		category string
		re       *regexp.Regexp
	}{
		// Before "connect": libpq reports these inside "connection to server ... failed:".
		{"auth", regexp.MustCompile(`(?i)authentication failed`)},
		{"database_missing", regexp.MustCompile(`(?i)database ".*" does not exist`)},
		{"permission", regexp.MustCompile(`(?i)permission denied`)},
		{"out_of_memory", regexp.MustCompile(`(?i)out of memory`)},
		{"disk_full", regexp.MustCompile(`(?i)disk full|no space left on device`)},
		{"connect", regexp.MustCompile(`(?i)could not connect|connection to server .*failed|could not translate host name|no pg_hba\.conf entry`)},
	}
	ignorablePatterns = regexp.MustCompile(`(?i)already exists|multiple primary keys|duplicate key value|role ".*" does not exist`)
	errorLine         = regexp.MustCompile(`(?i)\berror:`)
	warningLine       = regexp.MustCompile(`(?i)\bwarning:`)
)

// Class of one stderr line.
type lineClass int

const (
	lineOther lineClass = iota
	lineWarning
	lineIgnorable
	lineFatal
)

// classifyLine sorts one line of pg_restore's stderr; category names a fatal line's kind
// ("connect", "auth", ..., "other").
func classifyLine(line string) (class lineClass, category string) {
	// Continuations ("Command was: ...", "\tIs the server running...") quote SQL or detail an
	// error already counted.
	if line == "" || line[0] == ' ' || line[0] == '\t' || strings.HasPrefix(line, "Command was:") {
		return lineOther, ""
	}
	if !errorLine.MatchString(line) {
		if warningLine.MatchString(line) {
			return lineWarning, ""
		}
		return lineOther, ""
	}
	for _, p := range fatalPatterns {
		if p.re.MatchString(line) {
			return lineFatal, p.category
		}
	}
	if ignorablePatterns.MatchString(line) {
		return lineIgnorable, ""
	}
	return lineFatal, "other"
}

type classifier struct {
	mu            sync.Mutex
	errors        int
	ignored       int
	warnings      int
	firstFatal    string
	firstCategory string
}

func (c *classifier) add(line string) {
	class, category := classifyLine(line)
	c.mu.Lock()
	defer c.mu.Unlock()
	switch class {
	case lineWarning:
		c.warnings++
	case lineIgnorable:
		c.ignored++
	case lineFatal:
		c.errors++
		if c.firstFatal == "" {
			c.firstFatal, c.firstCategory = strings.TrimSpace(line), category
		}
	}
}

func (c *classifier) fill(r *RestoreResult) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r.Errors, r.Ignored, r.Warnings, r.FirstFatal = c.errors, c.ignored, c.warnings, c.firstFatal
}
