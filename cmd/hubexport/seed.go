package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

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
	sessions := fs.Int("sessions", 3, "how many recent sessions get request snapshots in HUB_REDIS_URL, for session_request exports (0: none)")
	sessionTTL := fs.Duration("session-ttl", seed.SessionTTL, "how long the session snapshots live, as CCH's SESSION_TTL")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return usageError{err}
	}
	if *rows < 0 {
		return usageError{fmt.Errorf("--rows must be 0 or more")}
	}
	if *sessions < 0 {
		return usageError{fmt.Errorf("--sessions must be 0 or more")}
	}
	if *sessionTTL < time.Second {
		return usageError{fmt.Errorf("--session-ttl must be 1s or more, such as 300s or 1h")}
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
	// Before touching Redis: a seeded database needs nothing from it.
	seeded, err := seed.Seeded(ctx, pool)
	if err != nil {
		return err
	}
	if seeded && *skip {
		fmt.Fprintln(stdout, "the database already holds hub data; nothing seeded")
		return nil
	}
	if seeded {
		return seed.ErrNotEmpty
	}
	var rdb *redis.Client
	if *sessions > 0 {
		// Checked before the database is filled, so a missing Redis leaves nothing half done.
		if rdb, err = openHubRedis(ctx, cfg.HubRedisURL); err != nil {
			return fmt.Errorf("%w (seed writes session snapshots there; --sessions 0 skips them)", err)
		}
		defer rdb.Close()
	}
	res, err := seedHub(ctx, pool, rdb, seed.Options{Rows: *rows, Seed: *seedN, Now: at, Log: log},
		seed.SessionOptions{Sessions: *sessions, TTL: *sessionTTL})
	if errors.Is(err, seed.ErrNotEmpty) && *skip {
		fmt.Fprintln(stdout, "the database already holds hub data; nothing seeded")
		return nil
	}
	if err != nil {
		return err
	}
	res.print(stdout)
	return nil
}

// openHubRedis connects to CCH's Redis and checks that it answers.
func openHubRedis(ctx context.Context, url string) (*redis.Client, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("HUB_REDIS_URL: %w", err)
	}
	rdb := redis.NewClient(opts)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("connect to HUB_REDIS_URL: %w", err)
	}
	return rdb, nil
}

// seeded is what seedHub made.
type seeded struct {
	report     seed.Report
	sessions   []seed.Session
	sessionTTL time.Duration
}

// seedHub fills the database, then writes session snapshots into rdb (when not nil).
func seedHub(ctx context.Context, pool *pgxpool.Pool, rdb *redis.Client, opts seed.Options, sopts seed.SessionOptions) (seeded, error) {
	rep, err := seed.Run(ctx, pool, opts)
	if err != nil {
		return seeded{}, err
	}
	res := seeded{report: rep, sessionTTL: sopts.TTL}
	if rdb != nil {
		if res.sessions, err = seed.WriteSessions(ctx, pool, rdb, sopts); err != nil {
			return seeded{}, err
		}
	}
	return res, nil
}

// print says what was seeded and how to sign in with it.
func (s seeded) print(w io.Writer) {
	rep := s.report
	fmt.Fprintf(w, "seeded %d users, %d keys, %d providers, %d requests, %d ledger rows, %d endpoints, %d probe logs in %s\n",
		rep.Users, rep.Keys, rep.Providers, rep.Requests, rep.LedgerRows, rep.Endpoints, rep.ProbeLogs, rep.Duration.Round(time.Millisecond))
	fmt.Fprintf(w, "  admin key: %s   (user %q, role admin: every export, schedules, webhooks, audit)\n", seed.AdminKey, seed.AdminUserName)
	fmt.Fprintf(w, "  user key:  %s   (user %q: usage logs of their own keys)\n", seed.UserKey, seed.UserName)
	if len(s.sessions) > 0 {
		fmt.Fprintf(w, "  session snapshots in HUB_REDIS_URL for %s, for session_request exports; they expire after %s (CCH keeps them SESSION_TTL, 300s by default):\n",
			plural(len(s.sessions), "session"), s.sessionTTL)
		for _, ss := range s.sessions {
			seqs := make([]string, len(ss.Sequences))
			for i, q := range ss.Sequences {
				seqs[i] = strconv.FormatInt(q, 10)
			}
			fmt.Fprintf(w, "    %s  requests %s\n", ss.ID, strings.Join(seqs, ", "))
		}
	}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}
