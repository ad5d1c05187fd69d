package pgdump

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hubexport/hubexport/internal/export"
)

// Magic starts every custom-format archive.
const Magic = "PGDMP"

// ErrNotADump matches (errors.Is) the error for a file that is not a custom-format dump.
var ErrNotADump = &export.Error{Kind: export.KindInvalid, Code: "not_a_dump", Message: "the file is not a pg_dump custom-format archive"}

// CheckMagic reads the first bytes of r and fails with ErrNotADump's code unless they are a
// custom-format archive's. It returns a reader that yields all of r again. Nothing runs on a
// file that fails here.
func CheckMagic(r io.Reader) (io.Reader, error) {
	head := make([]byte, len(Magic))
	n, err := io.ReadFull(r, head)
	head = head[:n]
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("pgdump: read dump header: %w", err)
	}
	if string(head) != Magic {
		return nil, notADump(head)
	}
	return io.MultiReader(bytes.NewReader(head), r), nil
}

func notADump(head []byte) error {
	why := "it does not start with " + Magic
	switch {
	case len(head) == 0:
		why = "it is empty"
	case len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b:
		why = "it is gzip-compressed; a custom-format dump is compressed inside, so decompress it first"
	case bytes.HasPrefix(head, []byte("--")) || bytes.HasPrefix(head, []byte("SET ")):
		why = "it looks like a plain SQL dump (pg_dump without -Fc); load that with psql"
	}
	return &export.Error{Kind: export.KindInvalid, Code: ErrNotADump.Code,
		Message: "the file is not a pg_dump custom-format archive (" + why + "); make backups with pg_dump -Fc or a database_backup job"}
}

// TOC is a dump's table of contents, as `pg_restore --list` prints it.
type TOC struct {
	Database   string // the dumped database's name
	Format     string // CUSTOM
	DumpedFrom string // server version
	DumpedBy   string // pg_dump version
	Entries    []TOCEntry
}

// TOCEntry is one line of the listing: "215; 1259 16385 TABLE public users postgres".
type TOCEntry struct {
	ID     int
	Desc   string // TABLE, TABLE DATA, INDEX, FK CONSTRAINT, ...
	Schema string // "-" for objects outside a schema
	Name   string
	Owner  string
	Line   string // as printed
}

// Has reports whether the dump holds an entry of this kind for schema.name.
func (t *TOC) Has(desc, schema, name string) bool {
	for _, e := range t.Entries {
		if e.Desc == desc && e.Schema == schema && e.Name == name {
			return true
		}
	}
	return false
}

// List runs `pg_restore --list` on the dump read from r (on the tool's stdin). It checks the
// magic bytes first. pg_restore reads only the header and table of contents, so List proves
// the archive opens and says what it holds, not that every data block is intact.
func (t *Tools) List(ctx context.Context, r io.Reader) (*TOC, error) {
	r, err := CheckMagic(r)
	if err != nil {
		return nil, err
	}
	return t.list(ctx, nil, r)
}

// ListFile is List on a file, which pg_restore reads directly.
func (t *Tools) ListFile(ctx context.Context, path string) (*TOC, error) {
	if err := checkFile(path); err != nil {
		return nil, err
	}
	return t.list(ctx, []string{path}, nil)
}

func checkFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("pgdump: open dump: %w", err)
	}
	defer f.Close()
	_, err = CheckMagic(f)
	return err
}

func (t *Tools) list(ctx context.Context, args []string, stdin io.Reader) (*TOC, error) {
	log := t.log().With("tool", "pg_restore", "pg_restore_version", t.PgRestore.Version.Text)
	stderr := newLineWriter("", func(line string) { log.DebugContext(ctx, "pg_restore_stderr", "line", line) })
	var out bytes.Buffer
	// No connection settings: listing reads only the file.
	cmd := command(ctx, t.PgRestore.Path, append([]string{"--list"}, args...), os.Environ())
	cmd.Stdin = stdin
	cmd.Stdout = &out
	cmd.Stderr = stderr
	start := time.Now()
	err := cmd.Run()
	stderr.flush()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("pgdump: pg_restore --list cancelled: %w", context.Cause(ctx))
	}
	if err != nil {
		tail := stderr.lines()
		log.WarnContext(ctx, "pg_restore_list_error", "error", err, "stderr_tail", tail)
		msg := fmt.Sprintf("pg_restore cannot read the dump (%v)", err)
		if lines := errorLines(tail); len(lines) > 0 {
			msg += ": " + strings.Join(lines, "; ")
		}
		return nil, &export.Error{Kind: export.KindInvalid, Code: "dump_unreadable", Message: msg,
			Err: &ToolError{Tool: "pg_restore", ExitCode: exitCode(err), Stderr: tail, Err: err}}
	}
	toc := parseTOC(out.Bytes())
	log.DebugContext(ctx, "pg_restore_list_complete", "entries", len(toc.Entries), "duration_ms", time.Since(start).Milliseconds())
	return toc, nil
}

func parseTOC(listing []byte) *TOC {
	toc := &TOC{}
	sc := bufio.NewScanner(bytes.NewReader(listing))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(strings.TrimPrefix(line, ";")), ":")
			if !ok {
				continue
			}
			v = strings.TrimSpace(v)
			switch k {
			case "dbname":
				toc.Database = v
			case "Format":
				toc.Format = v
			case "Dumped from database version":
				toc.DumpedFrom = v
			case "Dumped by pg_dump version":
				toc.DumpedBy = v
			}
			continue
		}
		if e, ok := parseTOCLine(line); ok {
			toc.Entries = append(toc.Entries, e)
		}
	}
	return toc
}

// tocDescs are pg_dump's object kinds of more than one word, longest first; a listing line
// cannot be split without knowing them.
var tocDescs = []string{
	"PUBLICATION TABLES IN SCHEMA", "TEXT SEARCH CONFIGURATION", "TEXT SEARCH DICTIONARY",
	"TEXT SEARCH TEMPLATE", "TEXT SEARCH PARSER", "MATERIALIZED VIEW DATA", "FOREIGN DATA WRAPPER",
	"DATABASE PROPERTIES", "PROCEDURAL LANGUAGE", "SEQUENCE OWNED BY", "MATERIALIZED VIEW",
	"PUBLICATION TABLE", "SUBSCRIPTION TABLE", "CHECK CONSTRAINT", "OPERATOR CLASS",
	"OPERATOR FAMILY", "STATISTICS DATA", "SECURITY LABEL", "FOREIGN SERVER", "FOREIGN TABLE",
	"BLOB METADATA", "EVENT TRIGGER", "ACCESS METHOD", "FK CONSTRAINT", "INDEX ATTACH",
	"TABLE ATTACH", "SEQUENCE SET", "ROW SECURITY", "USER MAPPING", "DEFAULT ACL", "LARGE OBJECT",
	"SHELL TYPE", "TABLE DATA",
}

func parseTOCLine(line string) (TOCEntry, bool) {
	idText, rest, ok := strings.Cut(line, ";")
	id, err := strconv.Atoi(strings.TrimSpace(idText))
	if !ok || err != nil {
		return TOCEntry{}, false
	}
	e := TOCEntry{ID: id, Line: line}
	if len(strings.Fields(rest)) < 3 {
		return e, true
	}
	rest = strings.TrimSpace(rest)
	// Skip the catalog table OID and the object OID.
	for range 2 {
		_, rest, _ = strings.Cut(rest, " ")
		rest = strings.TrimLeft(rest, " ")
	}
	e.Desc = ""
	for _, d := range tocDescs { // longest first
		if strings.HasPrefix(rest, d+" ") {
			e.Desc, rest = d, rest[len(d)+1:]
			break
		}
	}
	if e.Desc == "" {
		e.Desc, rest, _ = strings.Cut(rest, " ")
	}
	words := strings.Fields(rest)
	switch len(words) {
	case 0:
	case 1:
		e.Schema = words[0]
	case 2:
		e.Schema, e.Name = words[0], words[1]
	default:
		e.Schema, e.Owner = words[0], words[len(words)-1]
		e.Name = strings.Join(words[1:len(words)-1], " ")
	}
	return e, true
}
