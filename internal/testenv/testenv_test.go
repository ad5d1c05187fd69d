package testenv_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/hubexport/hubexport/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func pgConnect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func mustExec(t *testing.T, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(t.Context(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func databaseExists(t *testing.T, admin *pgx.Conn, name string) bool {
	t.Helper()
	var n int
	if err := admin.QueryRow(t.Context(), "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func TestPostgresDatabasesAreIsolatedAndDropped(t *testing.T) {
	t.Parallel()
	admin := pgConnect(t, testenv.PostgresServer(t))
	var names [2]string
	t.Run("two databases", func(t *testing.T) {
		a, b := pgConnect(t, testenv.Postgres(t)), pgConnect(t, testenv.Postgres(t))
		for i, c := range []*pgx.Conn{a, b} {
			if err := c.QueryRow(t.Context(), "SELECT current_database()").Scan(&names[i]); err != nil {
				t.Fatal(err)
			}
		}
		if names[0] == names[1] {
			t.Fatalf("both tests got database %s", names[0])
		}
		mustExec(t, a, "CREATE TABLE hubs (id int PRIMARY KEY, name text NOT NULL)")
		mustExec(t, a, "INSERT INTO hubs VALUES (1, 'Zürich')")
		var name string
		if err := a.QueryRow(t.Context(), "SELECT name FROM hubs").Scan(&name); err != nil || name != "Zürich" {
			t.Fatalf("read back %q, %v", name, err)
		}
		var found *string
		if err := b.QueryRow(t.Context(), "SELECT to_regclass('hubs')::text").Scan(&found); err != nil || found != nil {
			t.Fatalf("table leaked into the other database: %v, %v", found, err)
		}
		if !databaseExists(t, admin, names[0]) {
			t.Fatalf("database %s not in pg_database", names[0])
		}
	})
	// Dropping happens in the background once the test has ended.
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range names {
		for databaseExists(t, admin, n) {
			if time.Now().After(deadline) {
				t.Fatalf("database %s still exists after its test ended", n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func TestPostgresServerIsMaintenanceDatabase(t *testing.T) {
	t.Parallel()
	conn := pgConnect(t, testenv.PostgresServer(t))
	var super bool
	if err := conn.QueryRow(t.Context(), "SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user").Scan(&super); err != nil {
		t.Fatal(err)
	}
	if !super {
		t.Fatal("the maintenance connection cannot create databases")
	}
}

func TestPostgresFromClonesTemplate(t *testing.T) {
	t.Parallel()
	var builds atomic.Int32
	build := func(ctx context.Context, dsn string) error {
		builds.Add(1)
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		_, err = conn.Exec(ctx, `CREATE TABLE hubs (id int PRIMARY KEY, name text NOT NULL);
			INSERT INTO hubs VALUES (1, 'north'), (2, 'south')`)
		return err
	}
	// A connection build forgets to close must not break cloning.
	leaky := func(ctx context.Context, dsn string) error {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return err
		}
		_, err = conn.Exec(ctx, "CREATE TABLE t (x int); INSERT INTO t VALUES (42)")
		return err
	}

	for i := range 4 {
		t.Run("clone", func(t *testing.T) {
			t.Parallel()
			conn := pgConnect(t, testenv.PostgresFrom(t, "two hubs", build))
			var n int
			if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM hubs").Scan(&n); err != nil || n != 2 {
				t.Fatalf("clone has %d rows, %v; want 2", n, err)
			}
			// Each clone is a copy: changing it leaves the others alone.
			mustExec(t, conn, "INSERT INTO hubs VALUES ($1, 'extra')", 100+i)
			if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM hubs").Scan(&n); err != nil || n != 3 {
				t.Fatalf("after insert %d rows, %v; want 3", n, err)
			}
		})
		t.Run("leaky", func(t *testing.T) {
			t.Parallel()
			conn := pgConnect(t, testenv.PostgresFrom(t, "leaky", leaky))
			var x int
			if err := conn.QueryRow(t.Context(), "SELECT x FROM t").Scan(&x); err != nil || x != 42 {
				t.Fatalf("got %d, %v", x, err)
			}
		})
	}
	t.Cleanup(func() {
		if n := builds.Load(); n != 1 {
			t.Errorf("template built %d times, want once", n)
		}
	})
}

func TestPostgresFromBuildErrorFailsEveryCaller(t *testing.T) {
	t.Parallel()
	testenv.PostgresServer(t) // skips here under -short without a server, not in the goroutine below
	// A failing build is reported through t.Fatal; check the error path with a recorder.
	boom := errors.New("boom")
	for range 2 {
		r := &recorder{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			testenv.PostgresFrom(r, "broken", func(context.Context, string) error { return boom })
		}()
		<-done
		if !r.failed || !strings.Contains(r.msg, "boom") {
			t.Fatalf("failed=%v msg=%q; want a failure mentioning the build error", r.failed, r.msg)
		}
	}
}

// recorder captures Fatal instead of ending the real test.
type recorder struct {
	testing.TB
	failed bool
	msg    string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatal(args ...any) {
	r.failed = true
	for _, a := range args {
		if err, ok := a.(error); ok {
			r.msg += err.Error()
		}
	}
	runtime.Goexit()
}

func TestRedisIsolatedAndFlush(t *testing.T) {
	t.Parallel()
	a, b := testenv.NewRedis(t), testenv.NewRedis(t)
	if a.URL == b.URL {
		t.Fatalf("two tests share %s", a.URL)
	}
	ca, cb := redisClient(t, a), redisClient(t, b)
	ctx := t.Context()
	if err := ca.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := cb.Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Fatalf("key visible in the other Redis: %d, %v", n, err)
	}
	a.Flush(t)
	if err := ca.Get(ctx, "k").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("after Flush: %v, want redis.Nil", err)
	}
}

func TestRedisRestartLosesData(t *testing.T) {
	t.Parallel()
	if os.Getenv("TEST_REDIS_URL") != "" {
		t.Skip("Restart needs a harness-started redis-server")
	}
	r := testenv.NewRedis(t)
	c := redisClient(t, r)
	ctx := t.Context()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	r.Restart(t)
	// The pooled connection died with the server; go-redis retries on a new one.
	if err := c.Get(ctx, "k").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("after Restart: %v, want redis.Nil", err)
	}
	if err := c.Set(ctx, "k", "again", 0).Err(); err != nil {
		t.Fatalf("restarted server not usable: %v", err)
	}
}

func redisClient(t *testing.T, r *testenv.Redis) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(r.URL)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Addr != r.Addr || opts.DB != r.DB {
		t.Fatalf("URL %s disagrees with Addr %s DB %d", r.URL, r.Addr, r.DB)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestS3BucketChecksSignatures(t *testing.T) {
	t.Parallel()
	b := testenv.NewS3(t)
	if len(b.Bucket) < 3 || strings.ToLower(b.Bucket) != b.Bucket {
		t.Fatalf("bucket name %q is not valid for S3", b.Bucket)
	}
	client := func(secret string) *s3.Client {
		return s3.New(s3.Options{
			Region:       b.Region,
			Credentials:  credentials.NewStaticCredentialsProvider(b.AccessKey, secret, ""),
			BaseEndpoint: aws.String(b.Endpoint),
			UsePathStyle: true,
		})
	}
	ctx := t.Context()
	good := client(b.SecretKey)
	if _, err := good.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(b.Bucket), Key: aws.String("exports/a.csv"), Body: strings.NewReader("id,name\n1,north\n"),
	}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	out, err := good.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b.Bucket), Key: aws.String("exports/a.csv")})
	if err != nil {
		t.Fatalf("GetObject: %v", err)
	}
	body, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(body) != "id,name\n1,north\n" {
		t.Fatalf("read back %q", body)
	}

	_, err = client(b.SecretKey+"x").PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(b.Bucket), Key: aws.String("forged"), Body: strings.NewReader("x"),
	})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "SignatureDoesNotMatch" {
		t.Fatalf("PutObject with a wrong secret: %v, want SignatureDoesNotMatch", err)
	}
}

func TestProxyCutAndRestore(t *testing.T) {
	t.Parallel()
	p := testenv.NewProxy(t, echoServer(t))
	if got, want := p.URL("tcp"), "tcp://"+p.Addr(); got != want {
		t.Fatalf("URL = %s, want %s", got, want)
	}

	c, r := dial(t, p.Addr())
	roundTrip(t, c, r, "hello")

	p.Cut()
	// The open connection is closed by the proxy ...
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatal("open connection survived Cut")
	}
	// ... and new ones are closed at once.
	c2, r2 := dial(t, p.Addr())
	_, _ = c2.Write([]byte("ping\n"))
	_ = c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, err := r2.ReadString('\n'); err == nil {
		t.Fatalf("new connection answered %q while cut", line)
	}

	p.Restore()
	c3, r3 := dial(t, p.Addr())
	roundTrip(t, c3, r3, "back")
}

func TestProxyInFrontOfPostgres(t *testing.T) {
	t.Parallel()
	dsn := testenv.Postgres(t)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	p := testenv.NewProxy(t, net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))))
	host, port, _ := net.SplitHostPort(p.Addr())
	portNum, _ := strconv.Atoi(port)
	cfg.Host, cfg.Port = host, uint16(portNum)
	conn, err := pgx.ConnectConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if err := conn.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	p.Cut()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := conn.Ping(ctx); err == nil {
		t.Fatal("query went through a cut proxy")
	}
}

// echoServer answers each line with the same line.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, bufio.NewReader(c)
}

func roundTrip(t *testing.T, c net.Conn, r *bufio.Reader, msg string) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(msg + "\n")); err != nil {
		t.Fatal(err)
	}
	line, err := r.ReadString('\n')
	if err != nil || line != msg+"\n" {
		t.Fatalf("echo: %q, %v", line, err)
	}
}

// heldTB runs cleanups when the test says so, to hold a resource across goroutines.
type heldTB struct {
	testing.TB
	mu       sync.Mutex
	cleanups []func()
	fatal    string
}

func (h *heldTB) Helper() {}
func (h *heldTB) Cleanup(f func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cleanups = append(h.cleanups, f)
}
func (h *heldTB) Fatal(args ...any)                 { h.fail(fmt.Sprint(args...)) }
func (h *heldTB) Fatalf(format string, args ...any) { h.fail(fmt.Sprintf(format, args...)) }
func (h *heldTB) Skipf(format string, args ...any)  { h.fail(fmt.Sprintf(format, args...)) }
func (h *heldTB) fail(msg string) {
	h.mu.Lock()
	h.fatal = msg
	h.mu.Unlock()
	runtime.Goexit()
}
func (h *heldTB) release() {
	h.mu.Lock()
	fs := h.cleanups
	h.cleanups = nil
	h.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

func TestSharedRedisWaitsForAFreeDatabase(t *testing.T) {
	if os.Getenv("TEST_REDIS_URL") == "" {
		t.Skip("only TEST_REDIS_URL hands out database numbers")
	}
	newRedis := func() (*testenv.Redis, *heldTB) {
		h := &heldTB{TB: t}
		var r *testenv.Redis
		done := make(chan struct{})
		go func() {
			defer close(done)
			r = testenv.NewRedis(h)
		}()
		<-done
		if r == nil && testing.Short() {
			t.Skip(h.fatal)
		}
		if r == nil {
			t.Fatalf("NewRedis failed: %s", h.fatal)
		}
		return r, h
	}
	seen := map[int]bool{}
	var held []*heldTB
	defer func() {
		for _, h := range held {
			h.release()
		}
	}()
	var first int
	for i := range 15 {
		r, h := newRedis()
		held = append(held, h)
		if i == 0 {
			first = r.DB
		}
		if seen[r.DB] {
			t.Fatalf("database %d handed out twice", r.DB)
		}
		seen[r.DB] = true
	}

	got := make(chan *testenv.Redis, 1)
	go func() {
		r, h := newRedis()
		t.Cleanup(h.release)
		got <- r
	}()
	select {
	case r := <-got:
		t.Fatalf("a 16th test got database %d while 15 were held", r.DB)
	case <-time.After(200 * time.Millisecond):
	}
	held[0].release()
	select {
	case r := <-got:
		if r.DB != first {
			t.Fatalf("got database %d, not the released %d", r.DB, first)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting test did not get the released database")
	}
}
