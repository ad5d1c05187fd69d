package testenv

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hubexport/hubexport/internal/localserver"
)

// Postgres returns the DSN (postgres://...) of a fresh empty database for this test only, created
// from template0 and dropped after the test (in the background; Main waits). All tests of a binary share one server: the one at
// TEST_DATABASE_URL (whose database is used only for maintenance) or one the harness starts.
// Safe with t.Parallel.
func Postgres(t testing.TB) string {
	t.Helper()
	return postgresServer(t).freshDB(t, "template0", nil)
}

// PostgresServer returns the DSN of the maintenance database of the server Postgres uses ("postgres"
// on a harness server, TEST_DATABASE_URL as given otherwise), for tests that create and drop
// databases themselves. Such tests must drop what they create.
func PostgresServer(t testing.TB) string {
	t.Helper()
	return postgresServer(t).adminDSN
}

// PostgresFrom returns a fresh database cloned from a template built once per test binary per
// name: the first call for a name runs build with the template's DSN; every call clones it. build
// must close its connections before returning; leftovers are terminated and the template is then
// closed to connections, because Postgres refuses to clone a database somebody is connected to.
func PostgresFrom(t testing.TB, name string, build func(ctx context.Context, dsn string) error) string {
	t.Helper()
	s := postgresServer(t)
	pg.tplMu.Lock()
	if pg.tpls == nil {
		pg.tpls = make(map[string]*pgTemplate)
	}
	tp := pg.tpls[name]
	if tp == nil {
		tp = &pgTemplate{}
		pg.tpls[name] = tp
	}
	pg.tplMu.Unlock()

	tp.once.Do(func() {
		// Stays set if build panics or calls runtime.Goexit: once.Do then counts as done.
		tp.err = fmt.Errorf("testenv: template %q: build did not return", name)
		tp.db, tp.err = s.buildTemplate(t.Context(), name, build)
	})
	if tp.err != nil {
		t.Fatal(tp.err)
	}
	return s.freshDB(t, tp.db, &tp.cloneMu)
}

type pgTemplate struct {
	once    sync.Once
	db      string
	err     error
	cloneMu sync.Mutex
}

var pg struct {
	once sync.Once
	srv  *pgServer
	err  error

	tplMu sync.Mutex
	tpls  map[string]*pgTemplate
}

type pgServer struct {
	admin    url.URL // maintenance database
	adminDSN string
	version  int // server_version_num
	managed  bool

	drops   sync.WaitGroup
	dropSem chan struct{}
}

func postgresServer(t testing.TB) *pgServer {
	t.Helper()
	pg.once.Do(func() {
		if dsn := os.Getenv("TEST_DATABASE_URL"); dsn != "" {
			pg.srv, pg.err = externalPostgres(dsn)
		} else {
			pg.srv, pg.err = startPostgres()
		}
		if pg.err == nil {
			pg.srv.dropSem = make(chan struct{}, 4)
			atExit(pg.srv.drops.Wait) // registered after the server's stop, so it runs first
		}
	})
	if pg.err != nil {
		unavailable(t, pg.err)
	}
	return pg.srv
}

func externalPostgres(dsn string) (*pgServer, error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, errors.New("testenv: TEST_DATABASE_URL must be a postgres:// URL")
	}
	s := &pgServer{admin: *u, adminDSN: dsn}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.probe(ctx); err != nil {
		return nil, fmt.Errorf("testenv: TEST_DATABASE_URL: %w", err)
	}
	return s, nil
}

// probe checks that the server accepts queries and records its version.
func (s *pgServer) probe(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, s.adminDSN)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&s.version)
}

func startPostgres() (*pgServer, error) {
	root, err := rootDir()
	if err != nil {
		return nil, err
	}
	srv, err := localserver.StartPostgres(filepath.Join(root, "pg"))
	if errors.Is(err, localserver.ErrNotInstalled) {
		return nil, fmt.Errorf("testenv: %w, or set TEST_DATABASE_URL", err)
	}
	if err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	atExit(srv.Stop)
	return &pgServer{admin: srv.URL, adminDSN: srv.URL.String(), version: srv.Version, managed: true}, nil
}

func (s *pgServer) dsnFor(db string) string {
	u := s.admin
	u.Path = "/" + db
	u.RawPath = ""
	return u.String()
}

func (s *pgServer) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, s.adminDSN)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

func (s *pgServer) createDB(ctx context.Context, db, template string) error {
	sql := "CREATE DATABASE " + pgx.Identifier{db}.Sanitize() + " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	if s.version >= 150000 {
		// 15's default, WAL_LOG, pushes every page through shared buffers and WAL, and the
		// checkpoint of each later DROP DATABASE then has to write them all out. Measured here:
		// FILE_COPY is as fast serially and faster with parallel tests.
		sql += " STRATEGY FILE_COPY"
	}
	if err := s.exec(ctx, sql); err != nil {
		return fmt.Errorf("testenv: create database from %s: %w", template, err)
	}
	return nil
}

func (s *pgServer) dropDB(ctx context.Context, db string) error {
	if s.version < 130000 { // WITH (FORCE) arrived in 13
		_ = s.terminate(ctx, db)
		return s.exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize())
	}
	return s.exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)")
}

func (s *pgServer) terminate(ctx context.Context, db string) error {
	conn, err := pgx.Connect(ctx, s.adminDSN)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", db)
	return err
}

func (s *pgServer) freshDB(t testing.TB, template string, cloneMu *sync.Mutex) string {
	t.Helper()
	db := "hxt_" + randomHex(6)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if cloneMu != nil {
		cloneMu.Lock()
	}
	err := s.createDB(ctx, db, template)
	if cloneMu != nil {
		cloneMu.Unlock()
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.dropLater(db) })
	return s.dsnFor(db)
}

// dropLater drops db in the background: DROP DATABASE forces a checkpoint (hundreds of ms on
// a busy server) that the finished test need not wait for. Main waits for pending drops.
func (s *pgServer) dropLater(db string) {
	s.drops.Add(1)
	go func() {
		defer s.drops.Done()
		s.dropSem <- struct{}{} // bound the connections this takes
		defer func() { <-s.dropSem }()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.dropDB(ctx, db); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: drop database %s: %v\n", db, err)
		}
	}()
}

func (s *pgServer) buildTemplate(ctx context.Context, name string, build func(ctx context.Context, dsn string) error) (string, error) {
	db := "hxt_tpl_" + identPart(name) + "_" + randomHex(4)
	if err := s.createDB(ctx, db, "template0"); err != nil {
		return "", err
	}
	if !s.managed { // a harness server is thrown away whole
		atExit(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_ = s.dropDB(ctx, db)
		})
	}
	if err := build(ctx, s.dsnFor(db)); err != nil {
		dropCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = s.dropDB(dropCtx, db)
		return "", fmt.Errorf("testenv: build template %q: %w", name, err)
	}
	// Refuse new connections first, so a pool left behind by build cannot reconnect.
	if err := s.exec(ctx, "ALTER DATABASE "+pgx.Identifier{db}.Sanitize()+" WITH ALLOW_CONNECTIONS false"); err != nil {
		return "", fmt.Errorf("testenv: seal template %q: %w", name, err)
	}
	if err := s.terminate(ctx, db); err != nil {
		return "", fmt.Errorf("testenv: seal template %q: %w", name, err)
	}
	return db, nil
}

// identPart keeps a template's name readable in pg_database while staying a short identifier.
func identPart(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if b.Len() == 30 {
			break
		}
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}
