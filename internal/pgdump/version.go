package pgdump

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hubexport/hubexport/internal/export"
)

// ServerMajor returns the major version of the server at c (15 for 15.20), read from
// server_version_num. Releases before 10 report their first digit (9 for 9.6).
func ServerMajor(ctx context.Context, c Conn) (int, error) {
	cfg, err := pgx.ParseConfig(c.pgxConnString())
	if err != nil {
		// pgx's parse error quotes the connection string; its redaction is best effort.
		if inner := errors.Unwrap(err); inner != nil {
			return 0, fmt.Errorf("pgdump: server version: connection settings: %w", inner)
		}
		return 0, errors.New("pgdump: server version: connection settings rejected")
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return 0, fmt.Errorf("pgdump: server version: connect to %s: %w", c, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var num int
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&num); err != nil {
		return 0, fmt.Errorf("pgdump: server version: %w", err)
	}
	return majorOfNum(num), nil
}

// majorOfNum: 150020 → 15; before 10 the number was 90624 for 9.6.24, so 9.
func majorOfNum(num int) int { return num / 10000 }

// Version is a client tool's version, as `pg_dump --version` prints it.
type Version struct {
	Major int    // 15
	Text  string // "15.20"
}

func (v Version) String() string { return v.Text }

var versionRE = regexp.MustCompile(`\(PostgreSQL\)\s+((\d+)(?:\.\d+)*)`)

// parseVersion reads "pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)" or
// "pg_dump (PostgreSQL) 18beta1".
func parseVersion(out string) (Version, error) {
	m := versionRE.FindStringSubmatch(out)
	if m == nil {
		return Version{}, fmt.Errorf("unrecognised version output %q", strings.TrimSpace(firstLine(out)))
	}
	major, _ := strconv.Atoi(m[2])
	return Version{Major: major, Text: m[1]}, nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	if len(l) > 200 {
		l = l[:200]
	}
	return l
}

// ToolVersion runs `<path> --version`.
func ToolVersion(ctx context.Context, path string) (Version, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "--version")
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		return Version{}, fmt.Errorf("pgdump: %s --version: %w (%s)", path, err, strings.TrimSpace(firstLine(out.String())))
	}
	v, err := parseVersion(out.String())
	if err != nil {
		return Version{}, fmt.Errorf("pgdump: %s --version: %w", path, err)
	}
	return v, nil
}

// Tool is one resolved client program.
type Tool struct {
	Path    string
	Version Version
}

// Tools are the pg_dump and pg_restore a job runs.
type Tools struct {
	PgDump    Tool
	PgRestore Tool
	// Log receives the tools' events and their stderr (at debug level). Nil discards.
	Log *slog.Logger
}

// ToolConfig is how FindTools chooses.
type ToolConfig struct {
	PgDumpPath    string // PG_DUMP_PATH: use this pg_dump, still refusing one too old
	PgRestorePath string // PG_RESTORE_PATH: likewise
	Log           *slog.Logger
}

// layouts are where distributions install a major version's client programs off PATH.
var layouts = []string{
	"/usr/lib/postgresql/%d/bin",          // Debian, Ubuntu (postgresql-client-N)
	"/usr/pgsql-%d/bin",                   // RHEL and friends (PGDG postgresqlN)
	"/usr/libexec/postgresql%d",           // Alpine (postgresqlN-client)
	"/opt/homebrew/opt/postgresql@%d/bin", // Homebrew on Apple silicon
	"/usr/local/opt/postgresql@%d/bin",    // Homebrew on Intel
}

// FindTools picks pg_dump and pg_restore for a server of major version serverMajor. Each is,
// in order: the configured path; the one installed for exactly that major; the one on PATH if
// it is not older than the server; the oldest installed major that is newer. pg_dump refuses
// to dump a server newer than itself, so an older client fails here, at once, with a message
// naming both versions and what to install (code pg_dump_too_old / pg_restore_too_old), and a
// missing one with pg_dump_not_found / pg_restore_not_found.
func FindTools(ctx context.Context, serverMajor int, cfg ToolConfig) (*Tools, error) {
	dump, err := findTool(ctx, "pg_dump", "PG_DUMP_PATH", cfg.PgDumpPath, serverMajor)
	if err != nil {
		return nil, err
	}
	restore, err := findTool(ctx, "pg_restore", "PG_RESTORE_PATH", cfg.PgRestorePath, serverMajor)
	if err != nil {
		return nil, err
	}
	return &Tools{PgDump: dump, PgRestore: restore, Log: cfg.Log}, nil
}

func findTool(ctx context.Context, name, envName, override string, serverMajor int) (Tool, error) {
	if override != "" {
		v, err := ToolVersion(ctx, override)
		if err != nil {
			return Tool{}, &export.Error{Kind: export.KindConflict, Code: name + "_not_found",
				Message: fmt.Sprintf("%s=%s does not run as %s: %v", envName, override, name, err), Err: err}
		}
		if v.Major < serverMajor {
			return Tool{}, tooOld(name, envName, override, v, serverMajor)
		}
		return Tool{Path: override, Version: v}, nil
	}

	var searched []string
	for _, l := range layouts {
		dir := fmt.Sprintf(l, serverMajor)
		searched = append(searched, dir)
		p := filepath.Join(dir, name)
		if !isExecutable(p) {
			continue
		}
		if v, err := ToolVersion(ctx, p); err == nil && v.Major >= serverMajor {
			return Tool{Path: p, Version: v}, nil
		}
	}

	var older *Tool
	if p, err := exec.LookPath(name); err == nil {
		v, err := ToolVersion(ctx, p)
		if err == nil && v.Major >= serverMajor {
			return Tool{Path: p, Version: v}, nil
		}
		if err == nil {
			older = &Tool{Path: p, Version: v}
		}
	}

	if t, ok := newerInstalled(ctx, name, serverMajor); ok {
		return t, nil
	}
	if older != nil {
		return Tool{}, tooOld(name, envName, older.Path, older.Version, serverMajor)
	}
	return Tool{}, &export.Error{Kind: export.KindConflict, Code: name + "_not_found",
		Message: fmt.Sprintf("no %s for PostgreSQL %d found (looked in %s and PATH); %s, or set %s",
			name, serverMajor, strings.Join(searched, ", "), installHint(serverMajor), envName)}
}

// newerInstalled returns the oldest installed client newer than serverMajor.
func newerInstalled(ctx context.Context, name string, serverMajor int) (Tool, bool) {
	type cand struct {
		major int
		path  string
	}
	var cands []cand
	for _, l := range layouts {
		pattern := strings.Replace(l, "%d", "*", 1)
		dirs, _ := filepath.Glob(pattern)
		for _, d := range dirs {
			var major int
			if _, err := fmt.Sscanf(d, l, &major); err != nil || major <= serverMajor {
				continue
			}
			if p := filepath.Join(d, name); isExecutable(p) {
				cands = append(cands, cand{major, p})
			}
		}
	}
	slices.SortFunc(cands, func(a, b cand) int { return a.major - b.major })
	for _, c := range cands {
		if v, err := ToolVersion(ctx, c.path); err == nil && v.Major >= serverMajor {
			return Tool{Path: c.path, Version: v}, true
		}
	}
	return Tool{}, false
}

func tooOld(name, envName, path string, v Version, serverMajor int) error {
	return &export.Error{Kind: export.KindConflict, Code: name + "_too_old",
		Message: fmt.Sprintf("%s %s (%s) is older than the PostgreSQL %d server; %s cannot work with a server newer than itself. %s, or set %s to a %s %d or newer",
			name, v, path, serverMajor, name, installHint(serverMajor), envName, name, serverMajor)}
}

func installHint(major int) string {
	return fmt.Sprintf("Install postgresql-client-%d (Debian/Ubuntu; postgresql%d on RHEL with the PGDG repository, postgresql%d-client on Alpine)", major, major, major)
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}
