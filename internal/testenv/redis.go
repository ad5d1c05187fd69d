package testenv

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hubexport/hubexport/internal/localserver"
)

// Redis is an isolated Redis for one test.
type Redis struct {
	URL  string // redis://127.0.0.1:port/db
	Addr string // host:port
	DB   int

	opts *redis.Options     // for this test's database
	own  *localserver.Redis // nil when the server is TEST_REDIS_URL
}

// NewRedis gives the test its own redis-server process (about 12 ms to start) unless
// TEST_REDIS_URL is set. Then it hands out distinct database numbers of that server (every one
// but the URL's own, normally 1..15), flushed before use; tests beyond that wait for a release.
// Database numbers are locked in the URL's database so concurrent test binaries do not collide.
func NewRedis(t testing.TB) *Redis {
	t.Helper()
	if raw := os.Getenv("TEST_REDIS_URL"); raw != "" {
		return sharedRedisDB(t, raw)
	}
	srv, err := localserver.StartRedis(t.TempDir())
	if errors.Is(err, localserver.ErrNotInstalled) {
		unavailable(t, fmt.Errorf("testenv: %w, or set TEST_REDIS_URL", err))
	}
	if err != nil {
		unavailable(t, fmt.Errorf("testenv: %w", err))
	}
	t.Cleanup(srv.Stop)
	addr := srv.Addr
	return &Redis{
		URL:  "redis://" + addr + "/0",
		Addr: addr,
		opts: &redis.Options{Addr: addr},
		own:  srv,
	}
}

// Flush empties this test's Redis database, as if Redis had lost its data.
func (r *Redis) Flush(t testing.TB) {
	t.Helper()
	c := redis.NewClient(r.opts)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	flush := c.FlushDB
	if r.own != nil {
		flush = c.FlushAll // the whole server is this test's
	}
	if err := flush(ctx).Err(); err != nil {
		t.Fatalf("testenv: redis flush: %v", err)
	}
}

// Restart stops this test's redis-server and starts it again on the same port; data is lost.
// Clients see their connections drop and must reconnect. Fails the test with TEST_REDIS_URL set.
func (r *Redis) Restart(t testing.TB) {
	t.Helper()
	if r.own == nil {
		t.Fatal("testenv: Redis.Restart needs a harness-started redis-server; unset TEST_REDIS_URL")
	}
	if err := r.own.Restart(); err != nil {
		t.Fatalf("testenv: redis restart: %v", err)
	}
}

var sharedRedis struct {
	once  sync.Once
	err   error
	base  *url.URL
	opts  *redis.Options
	locks *redis.Client // on the URL's own database
	dbs   []int
}

// Compare-and-act scripts, so a lock that expired and was taken by another binary is left alone.
var (
	redisRelease = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) end return 0`)
	redisRenew   = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("pexpire", KEYS[1], ARGV[2]) end return 0`)
)

const redisLockTTL = 2 * time.Minute

func initSharedRedis(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("testenv: TEST_REDIS_URL: %w", err)
	}
	opts, err := redis.ParseURL(raw)
	if err != nil {
		return fmt.Errorf("testenv: TEST_REDIS_URL: %w", err)
	}
	locks := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := locks.Ping(ctx).Err(); err != nil {
		_ = locks.Close()
		return fmt.Errorf("testenv: TEST_REDIS_URL: %w", err)
	}
	n := 16
	if cfg, err := locks.ConfigGet(ctx, "databases").Result(); err == nil {
		if v, err := strconv.Atoi(cfg["databases"]); err == nil && v > 0 {
			n = v
		}
	}
	for db := 0; db < n; db++ {
		if db != opts.DB {
			sharedRedis.dbs = append(sharedRedis.dbs, db)
		}
	}
	if len(sharedRedis.dbs) == 0 {
		_ = locks.Close()
		return errors.New("testenv: TEST_REDIS_URL: the server has no database besides the URL's")
	}
	sharedRedis.base, sharedRedis.opts, sharedRedis.locks = u, opts, locks
	atExit(func() { _ = locks.Close() })
	return nil
}

func sharedRedisDB(t testing.TB, raw string) *Redis {
	t.Helper()
	sharedRedis.once.Do(func() { sharedRedis.err = initSharedRedis(raw) })
	if sharedRedis.err != nil {
		unavailable(t, sharedRedis.err)
	}
	locks := sharedRedis.locks
	token := randomHex(8)
	deadline := time.Now().Add(10 * time.Minute)
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok { // *testing.T, not *testing.B
		if dl, ok := d.Deadline(); ok {
			deadline = dl
		}
	}
	var key string
	db := -1
	for db < 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		for _, n := range sharedRedis.dbs {
			k := "hxt:testenv:redis-db:" + strconv.Itoa(n)
			got, err := locks.SetNX(ctx, k, token, redisLockTTL).Result()
			if err != nil {
				cancel()
				t.Fatalf("testenv: lock a redis database: %v", err)
			}
			if got {
				db, key = n, k
				break
			}
		}
		cancel()
		if db < 0 {
			if time.Now().After(deadline) {
				t.Fatal("testenv: no free database on TEST_REDIS_URL before the test deadline")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// Renew the lock while the test runs; its TTL only frees databases of crashed binaries.
	stop := make(chan struct{})
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		tick := time.NewTicker(redisLockTTL / 4)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_ = redisRenew.Run(ctx, locks, []string{key}, token, redisLockTTL.Milliseconds()).Err()
				cancel()
			}
		}
	}()

	opts := *sharedRedis.opts
	opts.DB = db
	c := redis.NewClient(&opts)
	flush := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return c.FlushDB(ctx).Err()
	}
	t.Cleanup(func() {
		_ = flush() // leave the database empty for whoever takes it next
		_ = c.Close()
		close(stop)
		<-renewed
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = redisRelease.Run(ctx, locks, []string{key}, token).Err()
	})
	if err := flush(); err != nil {
		t.Fatalf("testenv: redis flushdb %d: %v", db, err)
	}

	u := *sharedRedis.base
	u.Path = "/" + strconv.Itoa(db)
	u.RawPath = ""
	q := u.Query()
	q.Del("db") // go-redis also reads the database number from ?db=
	u.RawQuery = q.Encode()
	return &Redis{URL: u.String(), Addr: opts.Addr, DB: db, opts: &opts}
}
