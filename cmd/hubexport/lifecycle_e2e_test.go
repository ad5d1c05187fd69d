package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/hubexport/hubexport/internal/config"
)

// TestServeStopsWhatStartedWhenALaterStepFails runs serve in this process
// with HTTP_ADDR taken, so the API, the last part to start, fails after the
// worker, the schedulers and the maintenance loop have started. serve must
// return the listen error with all of them stopped: no Asynq goroutine left,
// no Asynq server registered in Redis, no PostgreSQL or Redis connection
// left open; the binary exits 1 saying why. A clean stop must leave the
// same nothing behind.
//
// Not parallel: it reads this process's goroutines, and parallel tests of
// this package only run once the sequential ones are done.
func TestServeStopsWhatStartedWhenALaterStepFails(t *testing.T) {
	s := newStack(t)
	rdb := redis.NewClient(mustRedisOptions(t, s.redis.URL))
	defer rdb.Close()
	pool := s.pool()
	redisConns := redisClientsOn(t, rdb, s.redis.DB)

	t.Run("HTTP_ADDR taken", func(t *testing.T) {
		taken, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer taken.Close()
		env := s.envWith("HTTP_ADDR", taken.Addr().String())
		var logs syncBuffer
		err = serveIn(context.Background(), t, env, &logs)
		if err == nil || !strings.Contains(err.Error(), "listen on HTTP_ADDR "+taken.Addr().String()) {
			t.Fatalf("serve returned %v, want the listen error", err)
		}
		for _, want := range []string{`"msg":"worker_started"`, `"msg":"scheduler_started"`, `"msg":"worker_stopped"`, `"msg":"scheduler_stopped"`} {
			if !strings.Contains(logs.String(), want) {
				t.Errorf("logs lack %s:\n%s", want, logs.String())
			}
		}
		assertNothingLeft(t, rdb, pool, s, redisConns)
	})

	t.Run("process exits non-zero", func(t *testing.T) {
		taken, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer taken.Close()
		p := startProc(t, s.envWith("HTTP_ADDR", taken.Addr().String()), "serve")
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			t.Fatalf("serve still runs 30s after its HTTP_ADDR was found taken:\n%s", p.Logs())
		}
		if code := p.cmd.ProcessState.ExitCode(); code != 1 {
			t.Errorf("exit status %d, want 1", code)
		}
		logs := p.Logs()
		for _, want := range []string{`"msg":"worker_stopped"`, `"msg":"exit","command":"serve","error":"listen on HTTP_ADDR ` + taken.Addr().String() + `: `} {
			if !strings.Contains(logs, want) {
				t.Errorf("logs lack %s:\n%s", want, logs)
			}
		}
		assertNothingLeft(t, rdb, pool, s, redisConns)
	})

	t.Run("clean stop", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		var logs syncBuffer
		go func() { done <- serveIn(ctx, t, s.env, &logs) }()
		waitServing(t, s.base, done)
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("serve after cancel: %v", err)
		}
		assertNothingLeft(t, rdb, pool, s, redisConns)
	})
}

func serveIn(ctx context.Context, t *testing.T, env map[string]string, logs *syncBuffer) error {
	t.Helper()
	cfg, err := config.Load(func(name string) (string, bool) { v, ok := env[name]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return serve(ctx, cfg, log, roles{api: true, worker: true, scheduler: true})
}

func (s *stack) envWith(k, v string) map[string]string {
	env := make(map[string]string, len(s.env))
	for k, v := range s.env {
		env[k] = v
	}
	env[k] = v
	return env
}

func waitServing(t *testing.T, base string, done <-chan error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-done:
			t.Fatalf("serve returned at start: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("serve not ready after 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// assertNothingLeft checks, allowing a few seconds for connections to be
// seen closed by the servers, that serve left nothing running.
func assertNothingLeft(t *testing.T, rdb *redis.Client, pool *pgxpool.Pool, s *stack, redisConns int) {
	t.Helper()
	ctx := context.Background()
	var problems []string
	deadline := time.Now().Add(5 * time.Second)
	for {
		problems = problems[:0]
		if g := goroutinesIn("github.com/hibiken/asynq", "github.com/hubexport/hubexport/jobs."); g != "" {
			problems = append(problems, "goroutines still run:\n"+g)
		}
		if n, err := rdb.ZCard(ctx, "asynq:servers").Result(); err != nil || n != 0 {
			problems = append(problems, "asynq:servers holds "+strconv.FormatInt(n, 10)+" servers (err "+errString(err)+")")
		}
		if keys, err := rdb.Keys(ctx, "asynq:servers:*").Result(); err != nil || len(keys) != 0 {
			problems = append(problems, "server keys left: "+strings.Join(keys, " ")+" (err "+errString(err)+")")
		}
		var pg int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'hubexport'`).Scan(&pg); err != nil || pg != 0 {
			problems = append(problems, strconv.Itoa(pg)+" hubexport PostgreSQL connections open (err "+errString(err)+")")
		}
		if n := redisClientsOn(t, rdb, s.redis.DB); n != redisConns {
			problems = append(problems, strconv.Itoa(n)+" Redis connections on the test's database, "+strconv.Itoa(redisConns)+" before serve")
		}
		if len(problems) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// goroutinesIn returns the stacks of this process's goroutines that run
// code of any of the packages.
func goroutinesIn(pkgs ...string) string {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, p := range pkgs {
			if strings.Contains(g, p) {
				out = append(out, g)
				break
			}
		}
	}
	return strings.Join(out, "\n\n")
}

// redisClientsOn counts the Redis server's connections that have selected
// database db.
func redisClientsOn(t *testing.T, rdb *redis.Client, db int) int {
	t.Helper()
	list, err := rdb.ClientList(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(list, "\n") {
		if strings.Contains(" "+line+" ", " db="+strconv.Itoa(db)+" ") {
			n++
		}
	}
	return n
}

func mustRedisOptions(t *testing.T, url string) *redis.Options {
	t.Helper()
	o, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func errString(err error) string {
	if err == nil {
		return "none"
	}
	return err.Error()
}

// syncBuffer is a log destination that serve's goroutines may share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
