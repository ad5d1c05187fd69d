package pgdump_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hubexport/hubexport/internal/pgdump"
	"github.com/hubexport/hubexport/internal/testenv"
)

// fakePostgres speaks just enough of the wire protocol to ask a client for its password in
// clear text: it records the startup parameters and the password, then refuses the login.
// The harness's server trusts every local login, so it could not show that the password
// arrived at all.
type fakePostgres struct {
	ln      net.Listener
	started chan map[string]string // a client's startup parameters
	proceed chan struct{}          // closed to let clients go on to authentication
	got     chan string            // the passwords received
}

func newFakePostgres(t *testing.T) *fakePostgres {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakePostgres{ln: ln, started: make(chan map[string]string, 8), proceed: make(chan struct{}), got: make(chan string, 8)}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.handle(c)
		}
	}()
	return f
}

func (f *fakePostgres) port() string { return strconv.Itoa(f.ln.Addr().(*net.TCPAddr).Port) }

func (f *fakePostgres) handle(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	var params map[string]string
	for params == nil {
		var hdr [8]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		body := make([]byte, binary.BigEndian.Uint32(hdr[:4])-8)
		if _, err := io.ReadFull(c, body); err != nil {
			return
		}
		switch binary.BigEndian.Uint32(hdr[4:]) {
		case 80877103, 80877104: // SSLRequest, GSSENCRequest: not here
			if _, err := c.Write([]byte{'N'}); err != nil {
				return
			}
		case 196608: // protocol 3.0 startup
			params = map[string]string{}
			kv := strings.Split(strings.TrimRight(string(body), "\x00"), "\x00")
			for i := 0; i+1 < len(kv); i += 2 {
				params[kv[i]] = kv[i+1]
			}
		default:
			return
		}
	}
	f.started <- params
	<-f.proceed
	// AuthenticationCleartextPassword.
	if _, err := c.Write([]byte{'R', 0, 0, 0, 8, 0, 0, 0, 3}); err != nil {
		return
	}
	var h [5]byte
	if _, err := io.ReadFull(c, h[:]); err != nil || h[0] != 'p' {
		return
	}
	body := make([]byte, binary.BigEndian.Uint32(h[1:])-4)
	if _, err := io.ReadFull(c, body); err != nil {
		return
	}
	f.got <- strings.TrimRight(string(body), "\x00")
	var e bytes.Buffer
	for _, field := range []string{"SFATAL", "VFATAL", "C28P01", fmt.Sprintf("Mpassword authentication failed for user %q", params["user"])} {
		e.WriteString(field)
		e.WriteByte(0)
	}
	e.WriteByte(0)
	msg := append([]byte{'E', 0, 0, 0, 0}, e.Bytes()...)
	binary.BigEndian.PutUint32(msg[1:], uint32(e.Len()+4))
	_, _ = c.Write(msg)
}

func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(15 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

const awkwardPassword = "p@ss:w/rd%"

// TestPasswordOnlyInTheEnvironment: a password with URL-special characters, percent-encoded
// in the URL, reaches the server decoded, through PGPASSWORD only: not in the running tool's
// argv, not in an error, not in a log line.
func TestPasswordOnlyInTheEnvironment(t *testing.T) {
	t.Parallel()
	real := parse(t, testenv.Postgres(t))
	tl, logs := tools(t, real)
	dump, _ := dumpToFile(t, tl, real, pgdump.ModeFull)

	runs := map[string]func(ctx context.Context, c pgdump.Conn) error{
		"pg_dump": func(ctx context.Context, c pgdump.Conn) error {
			_, err := tl.Dump(ctx, pgdump.DumpOptions{Conn: c, Mode: pgdump.ModeExcludeLogs}, io.Discard)
			return err
		},
		"pg_restore": func(ctx context.Context, c pgdump.Conn) error {
			_, err := tl.Restore(ctx, pgdump.RestoreOptions{Target: c, CleanFirst: true, SkipLogs: true}, dump)
			return err
		},
	}
	for program, run := range runs {
		t.Run(program, func(t *testing.T) {
			t.Parallel()
			fake := newFakePostgres(t)
			app := "hxt_pw_" + program
			dsn := "postgresql://hub%20user:p%40ss%3Aw%2Frd%25@127.0.0.1:" + fake.port() +
				"/hub%2Fdb?sslmode=disable&gssencmode=disable&application_name=" + app + "&statement_timeout=1000"
			c := parse(t, dsn)
			if c.Password != awkwardPassword {
				t.Fatalf("password decoded as %q", c.Password)
			}

			errc := make(chan error, 1)
			go func() { errc <- run(t.Context(), c) }()
			params := receive(t, fake.started, "the tool's startup message")
			proc := childWith(t, program, "PGAPPNAME="+app, 10*time.Second)
			for _, arg := range proc.Argv {
				if strings.Contains(arg, "p@ss") || strings.Contains(arg, "p%40ss") {
					t.Errorf("argv holds the password: %q", proc.Argv)
				}
			}
			if !containsString(proc.Env, "PGPASSWORD="+awkwardPassword) {
				t.Errorf("PGPASSWORD is not in the tool's environment")
			}
			if strings.Contains(strings.Join(append(proc.Argv, proc.Env...), "\n"), "statement_timeout") {
				t.Errorf("a pgx runtime parameter reached the tool: %q", proc.Argv)
			}
			close(fake.proceed)

			if got := receive(t, fake.got, "the password"); got != awkwardPassword {
				t.Errorf("the server got password %q, want %q", got, awkwardPassword)
			}
			if params["user"] != "hub user" || params["database"] != "hub/db" || params["application_name"] != app {
				t.Errorf("startup parameters %v", params)
			}
			err := receive(t, errc, program+" to fail")
			wantCode(t, err, program+"_failed")
			if !strings.Contains(err.Error(), "password authentication failed") {
				t.Errorf("error does not say why: %v", err)
			}
			for what, s := range map[string]string{
				"error": err.Error(), "log": logs.String(),
				"formatted conn": fmt.Sprintf("%v %+v %#v %s", c, c, c, c),
			} {
				if strings.Contains(s, "p@ss") || strings.Contains(s, "p%40ss") {
					t.Errorf("the %s holds the password: %s", what, s)
				}
			}
		})
	}

	t.Run("pgx", func(t *testing.T) {
		t.Parallel()
		fake := newFakePostgres(t)
		close(fake.proceed)
		c := parse(t, "postgres://hub%20user:p%40ss%3Aw%2Frd%25@127.0.0.1:"+fake.port()+"/hub%2Fdb?sslmode=disable")
		_, err := pgdump.ServerMajor(t.Context(), c)
		if err == nil || strings.Contains(err.Error(), "p@ss") {
			t.Fatalf("ServerMajor: %v", err)
		}
		if got := receive(t, fake.got, "pgx's password"); got != awkwardPassword {
			t.Fatalf("pgx sent %q", got)
		}
	})
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
