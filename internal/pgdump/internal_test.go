package pgdump

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestParseDSN(t *testing.T) {
	t.Parallel()
	cases := []struct {
		dsn  string
		want Conn
	}{
		{"postgres://postgres@127.0.0.1:5432/claude_code_hub",
			Conn{Host: "127.0.0.1", Port: "5432", User: "postgres", Database: "claude_code_hub"}},
		{"postgresql://u:p%40ss%3Aw%2Frd%25@db.internal/hub",
			Conn{Host: "db.internal", User: "u", Password: "p@ss:w/rd%", Database: "hub"}},
		{"POSTGRES://hub%20user:a+b@h:6432/my%20db",
			Conn{Host: "h", Port: "6432", User: "hub user", Password: "a+b", Database: "my db"}},
		{"postgres://u:pa@ss@h/db", // an unencoded '@' in the password, as pgx reads it
			Conn{Host: "h", User: "u", Password: "pa@ss", Database: "db"}},
		{"postgres://u:@h/db", Conn{Host: "h", User: "u", Database: "db"}},
		{"postgres://[::1]:5433/db", Conn{Host: "::1", Port: "5433", Database: "db"}},
		{"postgres://[2001:db8::7]/db", Conn{Host: "2001:db8::7", Database: "db"}},
		{"postgres://h1:5432,h2:5433,[::1]/db?target_session_attrs=read-write",
			Conn{Host: "h1,h2,::1", Port: "5432,5433,", Database: "db", Params: map[string]string{"target_session_attrs": "read-write"}}},
		{"postgres:///hub?host=/var/run/postgresql&port=5433",
			Conn{Host: "/var/run/postgresql", Port: "5433", Database: "hub"}},
		{"postgres://%2Ftmp%2Fsock/hub", Conn{Host: "/tmp/sock", Database: "hub"}},
		{"postgres://h/db?sslmode=verify-full&sslrootcert=/etc/ca.pem&sslcert=/c.pem&sslkey=/k.pem&options=-c%20search_path%3Dhub&application_name=hubexport",
			Conn{Host: "h", Database: "db", Params: map[string]string{
				"sslmode": "verify-full", "sslrootcert": "/etc/ca.pem", "sslcert": "/c.pem", "sslkey": "/k.pem",
				"options": "-c search_path=hub", "application_name": "hubexport"}}},
		{"postgres://h/db?ssl=true&keepalives=1&pool_max_conns=20&statement_timeout=5000",
			Conn{Host: "h", Database: "db", Params: map[string]string{"sslmode": "require", "keepalives": "1"},
				Ignored: []string{"pool_max_conns", "statement_timeout"}}},
		{"postgres://h/db?user=other&password=se%26cret&dbname=x",
			Conn{Host: "h", User: "other", Password: "se&cret", Database: "x"}},
		{"postgres://", Conn{}},
	}
	for _, tc := range cases {
		got, err := ParseDSN(tc.dsn)
		if err != nil {
			t.Errorf("ParseDSN(%q): %v", tc.dsn, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseDSN(%q)\n got %#v %q %q\nwant %#v %q %q", tc.dsn, got, got.Password, got.Params, tc.want, tc.want.Password, tc.want.Params)
		}
	}
}

func TestParseDSNErrorsNeverQuoteThePassword(t *testing.T) {
	t.Parallel()
	for _, dsn := range []string{
		"mysql://u:s3cretpw@h/db",
		"postgres://u:s3cretpw%zz@h/db",
		"postgres://u:s3cretpw@h:99999/db",
		"postgres://u:s3cretpw@[::1/db",
		"postgres://u:s3cretpw@h/db?sslpassword=s3cretpw",
		"postgres://u:s3cretpw@h/db#frag",
		"postgres://u:s3cretpw@h/db?sslmode",
		"s3cretpw",
	} {
		_, err := ParseDSN(dsn)
		if err == nil {
			t.Errorf("ParseDSN(%q) accepted it", dsn)
			continue
		}
		if strings.Contains(err.Error(), "s3cretpw") {
			t.Errorf("ParseDSN(%q): error quotes the password: %v", dsn, err)
		}
	}
}

func TestArgsAndEnv(t *testing.T) {
	t.Parallel()
	c, err := ParseDSN("postgres://hub:p%40ss%3Aw%2Frd%25@db:6432/claude_code_hub?sslmode=require&options=-c%20x%3D1&keepalives_idle=30&statement_timeout=5")
	if err != nil {
		t.Fatal(err)
	}
	dump := dumpArgs(DumpOptions{Conn: c, Mode: ModeExcludeLogs, ExcludeSchemas: []string{"hubexport"}})
	wantDump := []string{"--format=custom", "--verbose", "--no-password", "--host=db", "--port=6432", "--username=hub",
		"--dbname=dbname='claude_code_hub' keepalives_idle='30'", "--exclude-table-data=message_request", "--exclude-schema=hubexport"}
	if !slices.Equal(dump, wantDump) {
		t.Errorf("dumpArgs\n got %q\nwant %q", dump, wantDump)
	}
	if got := dumpArgs(DumpOptions{Conn: Conn{Database: "d"}, Mode: ModeLedgerOnly}); !slices.Contains(got, "--exclude-table=message_request") || slices.Contains(got, "--exclude-table-data=message_request") {
		t.Errorf("ledger_only args %q", got)
	}
	if got := dumpArgs(DumpOptions{Conn: Conn{Database: "d"}, Mode: ModeFull}); slices.ContainsFunc(got, func(a string) bool { return strings.HasPrefix(a, "--exclude") }) {
		t.Errorf("full args %q", got)
	}

	restore := restoreArgs(RestoreOptions{Target: c, CleanFirst: true}, "/tmp/list", "/data/x.dump")
	wantRestore := []string{"--verbose", "--no-password", "--host=db", "--port=6432", "--username=hub",
		"--dbname=dbname='claude_code_hub' keepalives_idle='30'", "--clean", "--if-exists", "--no-owner", "--use-list=/tmp/list", "/data/x.dump"}
	if !slices.Equal(restore, wantRestore) {
		t.Errorf("restoreArgs\n got %q\nwant %q", restore, wantRestore)
	}
	for _, a := range append(dump, restore...) {
		if strings.Contains(a, "p@ss") || strings.Contains(a, "p%40ss") {
			t.Fatalf("argument holds the password: %q", a)
		}
	}

	env := c.env([]string{"HOME=/root", "PGPASSWORD=stale", "PGSSLMODE=disable", "PGUSER=fallback"})
	wantEnv := []string{"HOME=/root", "PGUSER=fallback", "PGCONNECT_TIMEOUT=30", "PGOPTIONS=-c x=1", "PGPASSWORD=p@ss:w/rd%", "PGSSLMODE=require"}
	if !slices.Equal(env, wantEnv) {
		t.Errorf("env\n got %q\nwant %q", env, wantEnv)
	}
}

func TestDBNameArg(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		c    Conn
		want string
	}{
		{Conn{Database: "hub"}, "hub"},
		{Conn{}, ""},
		{Conn{Database: "a=b"}, `dbname='a=b'`},
		{Conn{Database: "postgres://x"}, `dbname='postgres://x'`},
		{Conn{Database: `it's\`}, `it's\`},
		{Conn{Database: `o'=\`}, `dbname='o\'=\\'`},
		{Conn{Params: map[string]string{"keepalives": "1"}}, `keepalives='1'`},
	} {
		if got := tc.c.dbnameArg(); got != tc.want {
			t.Errorf("dbnameArg(%q, %v) = %q, want %q", tc.c.Database, tc.c.Params, got, tc.want)
		}
	}
}

func TestParseVersion(t *testing.T) {
	t.Parallel()
	for out, want := range map[string]Version{
		"pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)\n": {15, "15.20"},
		"pg_dump (PostgreSQL) 12.3\n":                           {12, "12.3"},
		"pg_restore (PostgreSQL) 18beta1":                       {18, "18"},
		"pg_dump (PostgreSQL) 9.6.24":                           {9, "9.6.24"},
	} {
		got, err := parseVersion(out)
		if err != nil || got != want {
			t.Errorf("parseVersion(%q) = %+v, %v; want %+v", out, got, err, want)
		}
	}
	if _, err := parseVersion("bash: pg_dump: command not found"); err == nil {
		t.Error("parseVersion accepted garbage")
	}
}

func TestParseTOC(t *testing.T) {
	t.Parallel()
	listing := `;
; Archive created at 2026-01-29 10:30:00 UTC
;     dbname: claude_code_hub
;     TOC Entries: 6
;     Format: CUSTOM
;     Dumped from database version: 15.20 (Debian 15.20-0+deb12u1)
;     Dumped by pg_dump version: 15.20 (Debian 15.20-0+deb12u1)
;
; Selected TOC Entries:
;
215; 1259 16385 TABLE public message_request postgres
3401; 0 16385 TABLE DATA public message_request postgres
216; 1259 16390 SEQUENCE public message_request_id_seq postgres
3402; 0 0 SEQUENCE SET public message_request_id_seq postgres
3300; 2606 16400 FK CONSTRAINT public keys keys_user_id_fkey postgres
3100; 1259 16500 MATERIALIZED VIEW DATA public daily stats postgres
`
	toc := parseTOC([]byte(listing))
	if toc.Database != "claude_code_hub" || toc.Format != "CUSTOM" || !strings.HasPrefix(toc.DumpedBy, "15.20") || !strings.HasPrefix(toc.DumpedFrom, "15.20") {
		t.Fatalf("header %+v", toc)
	}
	want := []TOCEntry{
		{ID: 215, Desc: "TABLE", Schema: "public", Name: "message_request", Owner: "postgres"},
		{ID: 3401, Desc: "TABLE DATA", Schema: "public", Name: "message_request", Owner: "postgres"},
		{ID: 216, Desc: "SEQUENCE", Schema: "public", Name: "message_request_id_seq", Owner: "postgres"},
		{ID: 3402, Desc: "SEQUENCE SET", Schema: "public", Name: "message_request_id_seq", Owner: "postgres"},
		{ID: 3300, Desc: "FK CONSTRAINT", Schema: "public", Name: "keys keys_user_id_fkey", Owner: "postgres"},
		{ID: 3100, Desc: "MATERIALIZED VIEW DATA", Schema: "public", Name: "daily stats", Owner: "postgres"},
	}
	if len(toc.Entries) != len(want) {
		t.Fatalf("%d entries", len(toc.Entries))
	}
	for i, e := range toc.Entries {
		e.Line = ""
		if e != want[i] {
			t.Errorf("entry %d: got %+v, want %+v", i, e, want[i])
		}
	}
	if !toc.Has("TABLE DATA", "public", "message_request") || toc.Has("TABLE DATA", "public", "users") {
		t.Error("Has")
	}
}

func TestClassifyRestoreLines(t *testing.T) {
	t.Parallel()
	for line, want := range map[string]struct {
		class    lineClass
		category string
	}{
		`pg_restore: error: could not execute query: ERROR:  relation "users" already exists`:                                               {lineIgnorable, ""},
		`pg_restore: error: could not execute query: ERROR:  multiple primary keys for table "users" are not allowed`:                       {lineIgnorable, ""},
		`pg_restore: error: COPY failed for table "keys": ERROR:  duplicate key value violates unique constraint "k"`:                       {lineIgnorable, ""},
		`pg_restore: error: could not execute query: ERROR:  role "cch_app" does not exist`:                                                 {lineIgnorable, ""},
		`pg_restore: error: connection to server at "127.0.0.1", port 1 failed: Connection refused`:                                         {lineFatal, "connect"},
		`pg_restore: error: could not connect to database "hub": timeout expired`:                                                           {lineFatal, "connect"},
		`pg_restore: error: connection to server at "db" (10.0.0.1), port 5432 failed: FATAL:  password authentication failed for user "u"`: {lineFatal, "auth"},
		`pg_restore: error: could not execute query: ERROR:  permission denied for schema public`:                                           {lineFatal, "permission"},
		`pg_restore: error: connection to server on socket "/s/.s.PGSQL.5432" failed: FATAL:  database "x" does not exist`:                  {lineFatal, "database_missing"},
		`pg_restore: error: FATAL:  database "x" does not exist`:                                                                            {lineFatal, "database_missing"},
		`pg_restore: error: could not execute query: ERROR:  out of memory`:                                                                 {lineFatal, "out_of_memory"},
		`pg_restore: error: could not execute query: ERROR:  could not extend file: No space left on device`:                                {lineFatal, "disk_full"},
		`pg_restore: error: could not execute query: ERROR:  syntax error at or near "x"`:                                                   {lineFatal, "other"},
		`pg_restore: warning: errors ignored on restore: 3`:                                                                                 {lineWarning, ""},
		`pg_restore: creating TABLE "public.users"`:                                                                                         {lineOther, ""},
		`Command was: CREATE FUNCTION f() ... RAISE 'error: x'`:                                                                             {lineOther, ""},
		"\tIs the server running on that host and accepting TCP/IP connections?":                                                            {lineOther, ""},
	} {
		class, category := classifyLine(line)
		if class != want.class || category != want.category {
			t.Errorf("classifyLine(%q) = %v %q, want %v %q", line, class, category, want.class, want.category)
		}
	}
}

func TestLineWriter(t *testing.T) {
	t.Parallel()
	var got []string
	w := newLineWriter("hunter22", func(l string) { got = append(got, l) })
	w.Write([]byte("one\r\ntwo with hunter22 in it\nthr"))
	w.Write([]byte("ee\n" + strings.Repeat("x", maxLine+100) + "\nlast"))
	w.flush()
	if len(got) != 5 || got[0] != "one" || got[1] != "two with ******** in it" || got[2] != "three" || len(got[3]) != maxLine || got[4] != "last" {
		t.Fatalf("lines %q", got)
	}
	for range 30 {
		w.Write([]byte("more\n"))
	}
	if n := len(w.lines()); n != tailLines {
		t.Fatalf("tail keeps %d lines", n)
	}
}

func TestConnNeverFormatsThePassword(t *testing.T) {
	t.Parallel()
	c := Conn{Host: "::1", Port: "5432", User: "u", Password: "hunter22", Database: "db", Params: map[string]string{"sslmode": "require"}}
	for _, s := range []string{c.String(), c.GoString(), c.LogValue().String()} {
		if strings.Contains(s, "hunter22") {
			t.Fatalf("formatted: %s", s)
		}
	}
	if got := c.String(); got != "postgres://u@[::1]:5432/db?sslmode=require" {
		t.Fatalf("String() = %s", got)
	}
}
