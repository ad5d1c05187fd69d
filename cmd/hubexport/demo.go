package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hubexport/hubexport/internal/config"
	"github.com/hubexport/hubexport/internal/localserver"
	"github.com/hubexport/hubexport/internal/seed"
)

// demoDirPrefix names the demo's temporary directories; a demo that was killed outright
// leaves one behind, which the next demo removes.
const demoDirPrefix = "hubexport-demo-"

// demoDatabase is the demo hub's database, named as CCH names its own.
const demoDatabase = "claude_code_hub"

// demoCommand runs a throwaway hub on this machine's PostgreSQL and Redis binaries: it
// starts both in a temporary directory, seeds them, serves every role on --addr until
// SIGINT or SIGTERM, then stops everything and removes the directory.
func demoCommand(ctx context.Context, args []string, lookup config.Lookup, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", ":8080", "address the API and web page listen on")
	rows := fs.Int("rows", 20000, "number of demo requests (message_request rows)")
	sessionTTL := fs.Duration("session-ttl", time.Hour, "how long the demo's session snapshots live (CCH's default is 300s)")
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: hubexport demo [--addr :8080] [--rows 20000] [--session-ttl 1h]

Starts a throwaway PostgreSQL and Redis from this machine's binaries (Debian: apt-get install
postgresql redis-server) in a temporary directory, fills them with a demo hub, and serves the
API, a worker, the scheduler and the web page. Ctrl-C stops everything and removes the directory.

`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "hubexport demo: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	_, port, err := net.SplitHostPort(*addr)
	if err != nil || port == "" || port == "0" {
		fmt.Fprintf(stderr, "hubexport demo: --addr %q must be host:port or :port, such as :8080\n", *addr)
		return 2
	}
	if *rows < 0 {
		fmt.Fprintln(stderr, "hubexport demo: --rows must be 0 or more")
		return 2
	}
	if *sessionTTL < time.Second {
		fmt.Fprintln(stderr, "hubexport demo: --session-ttl must be 1s or more, such as 300s or 1h")
		return 2
	}
	if msg := demoMissing(); msg != "" {
		fmt.Fprint(stderr, msg)
		return 1
	}
	// Checked before anything starts, and so that the banner never names another server
	// answering on the address.
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(stderr, "hubexport demo: cannot listen on %s (%v); choose another address with --addr\n", *addr, err)
		return 1
	}
	_ = ln.Close()

	dir, err := localserver.TempDir(demoDirPrefix)
	if err != nil {
		fmt.Fprintf(stderr, "hubexport demo: %v\n", err)
		return 1
	}
	d := &demo{dir: dir}
	defer func() {
		d.stop()
		fmt.Fprintf(stderr, "hubexport demo: stopped PostgreSQL and Redis, removed %s\n", dir)
	}()
	if err := d.start(ctx); err != nil {
		return demoFailed(ctx, stderr, err)
	}

	publicURL := "http://" + publicHost(*addr) + ":" + port
	env := map[string]string{
		"DATABASE_URL":  d.pg.DSN(demoDatabase),
		"REDIS_URL":     d.redis.URL,
		"HUB_REDIS_URL": d.redis.URL,
		"HTTP_ADDR":     *addr,
		"PUBLIC_URL":    publicURL,
		"STORAGE_URL":   "file://" + filepath.Join(dir, "exports"),
	}
	cfg, err := config.Load(func(name string) (string, bool) {
		if v, ok := env[name]; ok {
			return v, true
		}
		switch name {
		case "VERIFY_DATABASE_URL", "VERIFY_DATABASE_URL_FILE":
			return "", false // drills use the demo's own server
		case "LOG_FORMAT":
			if v, ok := lookup(name); ok {
				return v, ok
			}
			return "text", true
		case "LOG_LEVEL":
			// The terminal shows the banner and what goes wrong; LOG_LEVEL=info shows the rest.
			if v, ok := lookup(name); ok {
				return v, ok
			}
			return "warn", true
		}
		return lookup(name)
	})
	if err != nil {
		fmt.Fprintf(stderr, "hubexport demo: %v\n", err)
		return 2
	}
	log := newLogger(cfg, stderr)

	res, err := d.seed(ctx, cfg, log, *rows, *sessionTTL)
	if err != nil {
		return demoFailed(ctx, stderr, fmt.Errorf("seed: %w", err))
	}

	served := make(chan error, 1)
	go func() { served <- serve(ctx, cfg, log, roles{api: true, worker: true, scheduler: true}) }()
	if err := waitHealthy(ctx, port, served); err != nil {
		if ctx.Err() == nil {
			fmt.Fprintf(stderr, "hubexport demo: %v\n", err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(stdout, "hubexport demo: open %s/ and sign in with a key below\n", publicURL)
	res.print(stdout)
	fmt.Fprintf(stdout, "  PostgreSQL %s, Redis %s, files in %s\n", d.pg.DSN(demoDatabase), d.redis.URL, dir)
	fmt.Fprintln(stdout, "Ctrl-C stops everything and removes that directory.")

	if err := <-served; err != nil {
		log.Error("exit", "command", "demo", "error", err)
		return 1
	}
	return 0
}

// demoFailed reports a failed start; Ctrl-C during the start is no failure.
func demoFailed(ctx context.Context, stderr io.Writer, err error) int {
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "hubexport demo: interrupted while starting")
		return 0
	}
	fmt.Fprintf(stderr, "hubexport demo: %v\n", err)
	return 1
}

// demoMissing names what the demo needs but cannot find, and how to install it; "" when
// everything is there.
func demoMissing() string {
	var missing []string
	if _, _, err := localserver.PostgresBinaries(); err != nil {
		missing = append(missing, "PostgreSQL's server (initdb and postgres, looked for in /usr/lib/postgresql/*/bin and PATH)")
	} else if err := localserver.CheckPostgresUser(); err != nil {
		missing = append(missing, "the 'postgres' OS user PostgreSQL runs as when started by root")
	}
	if _, err := localserver.RedisBinary(); err != nil {
		missing = append(missing, "redis-server (looked for in PATH)")
	}
	if len(missing) == 0 {
		return ""
	}
	return "hubexport demo: this machine lacks " + strings.Join(missing, ", and ") + ".\n" +
		"Install them (Debian, Ubuntu): apt-get install postgresql redis-server\n" +
		"With Docker instead: docker compose up\n"
}

// publicHost is the host a browser on this machine uses for the listen address.
func publicHost(addr string) string {
	host, _, _ := net.SplitHostPort(addr)
	switch host {
	case "", "0.0.0.0", "::":
		return "localhost"
	}
	if strings.Contains(host, ":") {
		return "[" + host + "]"
	}
	return host
}

// demo is the demo's servers and directory.
type demo struct {
	dir   string
	pg    *localserver.Postgres
	redis *localserver.Redis
}

func (d *demo) start(ctx context.Context) error {
	var err error
	if d.pg, err = localserver.StartPostgres(filepath.Join(d.dir, "pg")); err != nil {
		return err
	}
	rdir := filepath.Join(d.dir, "redis")
	if err := os.Mkdir(rdir, 0o700); err != nil {
		return fmt.Errorf("redis dir: %w", err)
	}
	if d.redis, err = localserver.StartRedis(rdir); err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, d.pg.URL.String())
	if err != nil {
		return fmt.Errorf("connect to the demo's PostgreSQL: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+demoDatabase); err != nil {
		return fmt.Errorf("create the demo database: %w", err)
	}
	return nil
}

func (d *demo) seed(ctx context.Context, cfg *config.Config, log *slog.Logger, rows int, ttl time.Duration) (seeded, error) {
	pool, err := openPool(ctx, cfg.DatabaseURL)
	if err != nil {
		return seeded{}, err
	}
	defer pool.Close()
	rdb, err := openHubRedis(ctx, cfg.HubRedisURL)
	if err != nil {
		return seeded{}, err
	}
	defer rdb.Close()
	return seedHub(ctx, pool, rdb, seed.Options{Rows: rows, Seed: 1, Now: time.Now().UTC().Truncate(time.Minute), Log: log},
		seed.SessionOptions{Sessions: 3, TTL: ttl})
}

// stop stops the servers and removes the directory, whatever start got to.
func (d *demo) stop() {
	if d.redis != nil {
		d.redis.Stop()
	}
	if d.pg != nil {
		d.pg.Stop()
	}
	_ = os.RemoveAll(d.dir)
}

// waitHealthy waits until the local API answers /healthz, serve ends, or ctx does.
func waitHealthy(ctx context.Context, port string, served <-chan error) error {
	url := "http://127.0.0.1:" + port + "/healthz"
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-served:
			if err == nil {
				return errors.New("the server stopped before it answered")
			}
			return err
		case <-ctx.Done():
			// serve drains on ctx; wait for it so the servers stop after it.
			<-served
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the API did not answer %s within 60s", url)
		}
	}
}
