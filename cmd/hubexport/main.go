// Command hubexport runs Claude Code Hub exports as durable background
// jobs. One binary, several roles:
//
//	hubexport serve       API + worker + scheduler in one process
//	hubexport demo        serve a seeded throwaway hub on local PostgreSQL and Redis binaries
//	hubexport api         the HTTP API alone
//	hubexport worker      the export workers alone
//	hubexport scheduler   the periodic tasks alone
//	hubexport migrate     apply hubexport's schema migrations and exit
//	hubexport seed        fill a database with CCH-shaped synthetic data, Redis with sessions
//	hubexport healthcheck probe the local API (container health checks)
//	hubexport export      a client: request an export, follow it, download it
//	hubexport schedule    a client: manage schedules of exports
//
// Configuration comes from the environment (see README.md).
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
	"os/signal"
	"syscall"
	"time"

	"github.com/hubexport/hubexport/internal/config"
)

const usage = `hubexport: Claude Code Hub exports as durable background jobs

usage: hubexport <command> [flags]

commands:
  serve       run the API, a worker and the scheduler in one process
  demo        start a throwaway PostgreSQL and Redis (local binaries), seed a demo hub and
              serve it on :8080 (--addr); Ctrl-C removes everything (hubexport demo --help)
  api         run the HTTP API only
  worker      run export workers only
  scheduler   run the periodic tasks only
  migrate     apply hubexport's schema migrations, then exit
  seed        create CCH's tables in an empty database, fill them with synthetic data and
              write session snapshots into HUB_REDIS_URL; prints the demo keys
  healthcheck exit 0 when the local API answers /healthz (for container health checks)
  export      request an export from a running API, show its progress, download and
              verify the file (hubexport export --help)
  schedule    create, list, pause, resume and delete schedules of a running API
              (hubexport schedule --help)

Configuration is read from environment variables; see README.md.
`

func main() {
	os.Exit(run(os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr))
}

func run(args []string, lookup config.Lookup, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, rest := args[0], args[1:]
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// The client talks to a server somewhere else: it needs none of the
	// server's configuration.
	if cmd == "export" {
		return exportCommand(ctx, rest, lookup, stdout, stderr)
	}
	if cmd == "schedule" {
		return scheduleCommand(ctx, rest, lookup, stdout, stderr)
	}
	// The demo makes its own databases.
	if cmd == "demo" {
		return demoCommand(ctx, rest, lookup, stdout, stderr)
	}

	cfg, err := config.Load(lookup)
	if err != nil {
		fmt.Fprintf(stderr, "hubexport: %v\n", err)
		return 2
	}
	log := newLogger(cfg, stderr)

	switch cmd {
	case "serve":
		err = serve(ctx, cfg, log, roles{api: true, worker: true, scheduler: true})
	case "api":
		err = serve(ctx, cfg, log, roles{api: true})
	case "worker":
		err = serve(ctx, cfg, log, roles{worker: true})
	case "scheduler":
		err = serve(ctx, cfg, log, roles{scheduler: true})
	case "migrate":
		err = migrate(ctx, cfg, log)
	case "healthcheck":
		err = healthcheck(ctx, cfg)
	case "seed":
		err = seedCommand(ctx, cfg, log, rest, stdout)
	default:
		fmt.Fprintf(stderr, "hubexport: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "hubexport %s: %v\n", cmd, err)
		return 2
	}
	if err != nil {
		log.Error("exit", "command", cmd, "error", err)
		return 1
	}
	return 0
}

// usageError is a bad command line.
type usageError struct{ error }

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// healthcheck asks the local API's /healthz.
func healthcheck(ctx context.Context, cfg *config.Config) error {
	_, port, err := net.SplitHostPort(cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("HTTP_ADDR %q: %w", cfg.HTTPAddr, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+port+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthz answered %d", resp.StatusCode)
	}
	return nil
}
