package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/hubexport/hubexport/internal/config"
	"github.com/hubexport/hubexport/internal/seed"
)

func seedCommand(ctx context.Context, cfg *config.Config, log *slog.Logger, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	fs.SetOutput(stdout)
	rows := fs.Int("rows", 10000, "number of message_request rows")
	seedN := fs.Int64("seed", 1, "random seed: the same seed, rows and --now give the same data")
	now := fs.String("now", "", "time of the newest row, RFC 3339 (default: now, to the minute)")
	skip := fs.Bool("skip-if-seeded", false, "exit successfully, doing nothing, when the database already holds hub data")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return usageError{err}
	}
	if *rows < 0 {
		return usageError{fmt.Errorf("--rows must be 0 or more")}
	}
	at := time.Now().UTC().Truncate(time.Minute)
	if *now != "" {
		t, err := time.Parse(time.RFC3339, *now)
		if err != nil {
			return usageError{fmt.Errorf("--now must be an RFC 3339 time such as 2026-01-29T10:30:00Z")}
		}
		at = t
	}
	pool, err := openPool(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	rep, err := seed.Run(ctx, pool, seed.Options{Rows: *rows, Seed: *seedN, Now: at, Log: log})
	if errors.Is(err, seed.ErrNotEmpty) && *skip {
		fmt.Fprintln(stdout, "the database already holds hub data; nothing seeded")
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "seeded %d users, %d keys, %d providers, %d requests, %d ledger rows, %d endpoints, %d probe logs in %s\n",
		rep.Users, rep.Keys, rep.Providers, rep.Requests, rep.LedgerRows, rep.Endpoints, rep.ProbeLogs, rep.Duration.Round(time.Millisecond))
	return nil
}
