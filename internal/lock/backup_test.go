package lock_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/hubexport/hubexport/internal/lock"
	"github.com/hubexport/hubexport/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// A value shaped like CCH's lockId: "<Date.now()>-<random base36>".
const cchValue = "1769682600000-k3j9x2q"

// redisClient talks to addr's database db: the test's own (testenv.Redis.DB), which is not 0
// when the tests share one server (TEST_REDIS_URL).
func redisClient(t *testing.T, addr string, db int) *redis.Client {
	t.Helper()
	// No retries and short timeouts: a test about an unreachable Redis must not wait on it.
	c := redis.NewClient(&redis.Options{Addr: addr, DB: db, MaxRetries: -1, DialerRetries: 1, DialTimeout: 300 * time.Millisecond,
		ReadTimeout: 300 * time.Millisecond, WriteTimeout: 300 * time.Millisecond})
	t.Cleanup(func() { c.Close() })
	return c
}

// testRedis is a client of a fresh Redis database of the test's own.
func testRedis(t *testing.T) *redis.Client {
	t.Helper()
	r := testenv.NewRedis(t)
	return redisClient(t, r.Addr, r.DB)
}

func pgPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// unreachableRedis is a client for a port nothing listens on.
func unreachableRedis(t *testing.T) *redis.Client {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return redisClient(t, addr, 0)
}

type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) has(event string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Contains(b.buf.String(), `"msg":"`+event+`"`)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newLog() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// fast are options for tests: quick retries, short waits.
func fast(log *slog.Logger) lock.BackupOptions {
	return lock.BackupOptions{MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, Wait: 20 * time.Second, Log: log}
}

func acquire(t *testing.T, rdb redis.UniversalClient, pool *pgxpool.Pool, o lock.BackupOptions) *lock.BackupLock {
	t.Helper()
	l, err := lock.AcquireBackup(t.Context(), rdb, pool, o)
	if err != nil {
		t.Fatalf("AcquireBackup: %v", err)
	}
	t.Cleanup(func() { _ = l.Release(context.Background()) })
	return l
}

func TestBackupLockExcludes(t *testing.T) {
	t.Parallel()
	setups := map[string]func(t *testing.T) (redis.UniversalClient, *pgxpool.Pool, string){
		"RedisAndPostgres": func(t *testing.T) (redis.UniversalClient, *pgxpool.Pool, string) {
			return testRedis(t), pgPool(t), "redis+postgres"
		},
		"RedisOnly": func(t *testing.T) (redis.UniversalClient, *pgxpool.Pool, string) {
			return testRedis(t), nil, "redis"
		},
		"PostgresFallback": func(t *testing.T) (redis.UniversalClient, *pgxpool.Pool, string) {
			return unreachableRedis(t), pgPool(t), "postgres"
		},
	}
	for name, setup := range setups {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rdb, pool, backend := setup(t)
			var inside, maxInside, turns atomic.Int32
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range 3 {
						o := fast(nil)
						o.Holder = "worker-" + string(rune('a'+w))
						l, err := lock.AcquireBackup(t.Context(), rdb, pool, o)
						if err != nil {
							t.Errorf("AcquireBackup: %v", err)
							return
						}
						n := inside.Add(1)
						if n > maxInside.Load() {
							maxInside.Store(n)
						}
						if l.Backend() != backend {
							t.Errorf("backend %q, want %q", l.Backend(), backend)
						}
						if backend != "postgres" {
							if v, _ := rdb.Get(context.Background(), lock.BackupKey).Result(); v != l.Value() {
								t.Errorf("the key holds %q while %q holds the lock", v, l.Value())
							}
						}
						time.Sleep(15 * time.Millisecond)
						inside.Add(-1)
						turns.Add(1)
						if err := l.Release(context.Background()); err != nil {
							t.Errorf("Release: %v", err)
						}
					}
				}()
			}
			wg.Wait()
			if maxInside.Load() != 1 || turns.Load() != 12 {
				t.Fatalf("%d holders at once at most, %d turns", maxInside.Load(), turns.Load())
			}
		})
	}
}

// TestBackupLockWaitsForCCH: CCH holds the key (a plain SET NX PX with its own value); the
// acquirer reports the wait, then takes the lock once CCH releases it.
func TestBackupLockWaitsForCCH(t *testing.T) {
	t.Parallel()
	rdb := testRedis(t)
	if ok, err := rdb.SetNX(t.Context(), lock.BackupKey, cchValue, 5*time.Minute).Result(); !ok || err != nil {
		t.Fatalf("CCH's SET NX: %v %v", ok, err)
	}
	log, logs := newLog()
	waits := make(chan lock.BackupHolder, 100)
	o := fast(log)
	o.OnWait = func(h lock.BackupHolder) { waits <- h }
	pool := pgPool(t)
	got := make(chan *lock.BackupLock, 1)
	go func() {
		l, err := lock.AcquireBackup(t.Context(), rdb, pool, o)
		if err != nil {
			t.Errorf("AcquireBackup: %v", err)
		}
		got <- l
	}()

	var h lock.BackupHolder
	select {
	case h = <-waits:
	case <-time.After(10 * time.Second):
		t.Fatal("OnWait was never called")
	}
	if h.Backend != "redis" || h.Value != cchValue || !h.ByCCH() || h.ExpiresIn <= 4*time.Minute {
		t.Fatalf("holder %+v", h)
	}
	if !strings.Contains(h.String(), "CCH") {
		t.Errorf("holder reads %q", h.String())
	}
	select {
	case <-got:
		t.Fatal("acquired while CCH held the lock")
	case <-time.After(100 * time.Millisecond):
	}
	if v, _ := rdb.Get(t.Context(), lock.BackupKey).Result(); v != cchValue {
		t.Fatalf("CCH's value was replaced by %q", v)
	}

	rdb.Del(t.Context(), lock.BackupKey) // CCH's compare-and-delete
	var l *lock.BackupLock
	select {
	case l = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("not acquired after CCH released")
	}
	if l == nil {
		t.FailNow()
	}
	defer l.Release(context.Background())
	if v, _ := rdb.Get(t.Context(), lock.BackupKey).Result(); v != l.Value() || !strings.HasPrefix(v, "hubexport:") {
		t.Fatalf("key holds %q, lock value %q", v, l.Value())
	}
	if ttl, _ := rdb.PTTL(t.Context(), lock.BackupKey).Result(); ttl <= 4*time.Minute || ttl > 5*time.Minute {
		t.Fatalf("TTL %v, want CCH's 5 minutes", ttl)
	}
	for _, ev := range []string{"backup_lock_conflict", "backup_lock_acquired"} {
		if !logs.has(ev) {
			t.Errorf("no %s event:\n%s", ev, logs)
		}
	}
}

func TestBackupLockConflictAfterDeadline(t *testing.T) {
	t.Parallel()
	rdb := testRedis(t)
	rdb.Set(t.Context(), lock.BackupKey, cchValue, time.Minute)
	o := fast(nil)
	o.Wait = 300 * time.Millisecond
	var waits atomic.Int32
	o.OnWait = func(lock.BackupHolder) { waits.Add(1) }
	start := time.Now()
	_, err := lock.AcquireBackup(t.Context(), rdb, pgPool(t), o)
	took := time.Since(start)
	var e *lock.HeldError
	if !errors.As(err, &e) || !errors.Is(err, lock.ErrHeld) {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(err.Error(), "CCH") || !e.Holder.ByCCH() || e.Holder.Waited < 250*time.Millisecond {
		t.Errorf("the error does not say who holds it, or for how long it waited: %v, %+v", err, e.Holder)
	}
	// The upper bound only tells "gave up at its deadline" from "waited for the key's minute".
	if took < 250*time.Millisecond || took > 30*time.Second || waits.Load() == 0 {
		t.Fatalf("gave up after %v and %d waits", took, waits.Load())
	}
	if v, _ := rdb.Get(t.Context(), lock.BackupKey).Result(); v != cchValue {
		t.Fatalf("the failed acquirer touched CCH's key: %q", v)
	}

	// The advisory lock taken before the Redis key was given back: another acquirer gets
	// that far at once.
	o.Wait = -1
	_, err = lock.AcquireBackup(t.Context(), rdb, pgPool(t), o)
	if !errors.As(err, &e) || !strings.Contains(err.Error(), "CCH") {
		t.Fatalf("second acquirer: %v", err)
	}
}

func TestBackupLockRenewalOutlivesTTL(t *testing.T) {
	t.Parallel()
	rdb := testRedis(t)
	log, logs := newLog()
	o := fast(log)
	o.TTL, o.RenewEvery = 500*time.Millisecond, 100*time.Millisecond
	l := acquire(t, rdb, nil, o)
	time.Sleep(1500 * time.Millisecond) // three TTLs
	if v, _ := rdb.Get(t.Context(), lock.BackupKey).Result(); v != l.Value() {
		t.Fatalf("after three TTLs the key holds %q", v)
	}
	if ttl, _ := rdb.PTTL(t.Context(), lock.BackupKey).Result(); ttl <= 0 || ttl > 500*time.Millisecond {
		t.Fatalf("TTL %v", ttl)
	}
	if l.Err() != nil {
		t.Fatalf("lost: %v", l.Err())
	}
	if err := l.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n, _ := rdb.Exists(t.Context(), lock.BackupKey).Result(); n != 0 {
		t.Fatal("the key survived Release")
	}
	if !logs.has("backup_lock_released") {
		t.Errorf("no backup_lock_released event:\n%s", logs)
	}
}

func TestBackupLockLost(t *testing.T) {
	t.Parallel()
	for name, steal := range map[string]func(ctx context.Context, rdb *redis.Client){
		"Deleted":     func(ctx context.Context, rdb *redis.Client) { rdb.Del(ctx, lock.BackupKey) },
		"Overwritten": func(ctx context.Context, rdb *redis.Client) { rdb.Set(ctx, lock.BackupKey, cchValue, time.Minute) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rdb := testRedis(t)
			log, logs := newLog()
			o := fast(log)
			o.TTL, o.RenewEvery = 2*time.Second, 50*time.Millisecond
			l := acquire(t, rdb, pgPool(t), o)
			work, cancel := l.Context(t.Context())
			defer cancel()

			steal(t.Context(), rdb)
			select {
			case <-l.Lost():
			case <-time.After(2 * time.Second):
				t.Fatal("Lost did not fire")
			}
			if !errors.Is(l.Err(), lock.ErrLost) {
				t.Fatalf("Err() = %v", l.Err())
			}
			select {
			case <-work.Done():
				if !errors.Is(context.Cause(work), lock.ErrLost) {
					t.Fatalf("work context cause: %v", context.Cause(work))
				}
			case <-time.After(time.Second):
				t.Fatal("the work context did not end")
			}
			if err := l.Release(t.Context()); err != nil {
				t.Fatal(err)
			}
			want := ""
			if name == "Overwritten" {
				want = cchValue // compare-and-delete leaves the new holder's key alone
			}
			if v, _ := rdb.Get(t.Context(), lock.BackupKey).Result(); v != want {
				t.Fatalf("key holds %q after Release, want %q", v, want)
			}
			if !logs.has("backup_lock_lost") {
				t.Errorf("no backup_lock_lost event:\n%s", logs)
			}
		})
	}
}

// TestBackupLockFallback: with Redis unreachable the advisory lock alone holds, and it excludes
// a second hubexport in the same state.
func TestBackupLockFallback(t *testing.T) {
	t.Parallel()
	rdb := unreachableRedis(t)
	pool := pgPool(t)
	log, logs := newLog()
	first := acquire(t, rdb, pool, fast(log))
	if first.Backend() != "postgres" || !logs.has("backup_lock_fallback") {
		t.Fatalf("backend %q; log:\n%s", first.Backend(), logs)
	}

	o := fast(nil)
	o.Wait = 200 * time.Millisecond
	var holder lock.BackupHolder
	o.OnWait = func(h lock.BackupHolder) { holder = h }
	_, err := lock.AcquireBackup(t.Context(), rdb, pool, o)
	if !errors.As(err, new(*lock.HeldError)) {
		t.Fatalf("second fallback holder: %v", err)
	}
	if holder.Backend != "postgres" || holder.PID == 0 {
		t.Fatalf("holder %+v", holder)
	}

	o.Wait = 20 * time.Second
	got := make(chan error, 1)
	go func() {
		l, err := lock.AcquireBackup(t.Context(), rdb, pool, o)
		if err == nil {
			err = l.Release(context.Background())
		}
		got <- err
	}()
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-got:
		t.Fatalf("second holder got through: %v", err)
	default:
	}
	if err := first.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("second holder never got the lock")
	}
}

func TestBackupLockNeedsOneBackend(t *testing.T) {
	t.Parallel()
	_, err := lock.AcquireBackup(t.Context(), unreachableRedis(t), nil, fast(nil))
	if err == nil || errors.Is(err, lock.ErrHeld) {
		t.Fatalf("got %v", err)
	}
}

// TestBackupLockFallbackRecoversRedis: held through the fallback while Redis was cut off, the
// lock takes CCH's key once Redis answers again, so CCH sees it too; and a release that cannot
// reach Redis says so.
func TestBackupLockFallbackRecoversRedis(t *testing.T) {
	t.Parallel()
	srv := testenv.NewRedis(t)
	proxy := testenv.NewProxy(t, srv.Addr)
	rdb := redisClient(t, proxy.Addr(), srv.DB)
	direct := redisClient(t, srv.Addr, srv.DB)
	log, logs := newLog()
	o := fast(log)
	o.TTL, o.RenewEvery = 2*time.Second, 50*time.Millisecond

	proxy.Cut()
	l := acquire(t, rdb, pgPool(t), o)
	if l.Backend() != "postgres" {
		t.Fatalf("backend %q with Redis cut off", l.Backend())
	}
	proxy.Restore()
	deadline := time.Now().Add(15 * time.Second)
	for l.Backend() != "redis+postgres" {
		if time.Now().After(deadline) {
			t.Fatalf("never took the Redis key back; log:\n%s", logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if v, _ := direct.Get(t.Context(), lock.BackupKey).Result(); v != l.Value() {
		t.Fatalf("key holds %q", v)
	}

	proxy.Cut()
	if err := l.Release(t.Context()); err == nil {
		t.Fatal("Release reported success with Redis cut off")
	}
	if !logs.has("database_export_lock_release_error") || !logs.has("backup_lock_redis_recovered") {
		t.Fatalf("log:\n%s", logs)
	}
}

// TestBackupLockFallbackConnectionLoss: the fallback's session ends, so the lock is gone.
func TestBackupLockFallbackConnectionLoss(t *testing.T) {
	t.Parallel()
	pool := pgPool(t)
	o := fast(nil)
	o.RenewEvery = 50 * time.Millisecond
	l := acquire(t, unreachableRedis(t), pool, o)
	if _, err := pool.Exec(t.Context(), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'hubexport backup lock' AND datname = current_database()"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.Lost():
	case <-time.After(5 * time.Second):
		t.Fatal("Lost did not fire")
	}
	if !errors.Is(l.Err(), lock.ErrLost) {
		t.Fatalf("Err() = %v", l.Err())
	}
}

// A new attempt of a job whose worker died takes over the Redis key the dead attempt left
// (hubexport:<job id>:<random>) at once; another job's key, or CCH's, it waits for.
func TestBackupLockTakesOverOwnStaleKey(t *testing.T) {
	t.Parallel()
	rdb := testRedis(t)
	pool := pgPool(t)
	ctx := t.Context()
	log, logs := newLog()
	noWait := fast(log)
	noWait.Wait = -1

	for _, other := range []string{"hubexport:exp_B:0123", "hubexport:exp_AB:0123", cchValue} {
		if err := rdb.Set(ctx, lock.BackupKey, other, 5*time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		o := noWait
		o.Holder = "exp_A"
		if l, err := lock.AcquireBackup(ctx, rdb, pool, o); !errors.Is(err, lock.ErrHeld) {
			if l != nil {
				_ = l.Release(ctx)
			}
			t.Fatalf("exp_A over %q: %v, want a conflict", other, err)
		}
		if v, _ := rdb.Get(ctx, lock.BackupKey).Result(); v != other {
			t.Fatalf("the key reads %q after a refused take-over of %q", v, other)
		}
	}

	stale := "hubexport:exp_A:0123456789abcdef"
	if err := rdb.Set(ctx, lock.BackupKey, stale, 5*time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	o := noWait
	o.Holder = "exp_A"
	start := time.Now()
	l := acquire(t, rdb, pool, o)
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("take-over took %s", took)
	}
	v, _ := rdb.Get(ctx, lock.BackupKey).Result()
	if v != l.Value() || v == stale || !strings.HasPrefix(v, "hubexport:exp_A:") || l.Backend() != "redis+postgres" {
		t.Fatalf("key %q, lock %q on %s", v, l.Value(), l.Backend())
	}
	if ttl, _ := rdb.PTTL(ctx, lock.BackupKey).Result(); ttl <= 4*time.Minute {
		t.Fatalf("taken-over key's TTL %s", ttl)
	}
	if !logs.has("backup_lock_taken_over") {
		t.Fatalf("no backup_lock_taken_over in the logs:\n%s", logs)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := rdb.Exists(ctx, lock.BackupKey).Result(); n != 0 {
		t.Fatal("the key outlived Release")
	}
}

// TestBackupLockFallbackOutlivesRedisOutage: Redis is cut off for longer than the key's TTL while
// the advisory lock holds, so the key expires; the lock holds on the advisory lock and takes the
// key again once Redis answers, instead of calling itself lost because its old key is gone.
func TestBackupLockFallbackOutlivesRedisOutage(t *testing.T) {
	t.Parallel()
	srv := testenv.NewRedis(t)
	proxy := testenv.NewProxy(t, srv.Addr)
	rdb := redisClient(t, proxy.Addr(), srv.DB)
	direct := redisClient(t, srv.Addr, srv.DB)
	log, logs := newLog()
	o := fast(log)
	// Renewals every 250 ms: each PostgreSQL session check is bounded by the interval, which a
	// loaded, race-checked run needs more than 50 ms for.
	o.TTL, o.RenewEvery = 1500*time.Millisecond, 250*time.Millisecond
	l := acquire(t, rdb, pgPool(t), o)
	if l.Backend() != "redis+postgres" {
		t.Fatalf("backend %q", l.Backend())
	}

	proxy.Cut()
	time.Sleep(3200 * time.Millisecond) // over two TTLs
	if n, _ := direct.Exists(t.Context(), lock.BackupKey).Result(); n != 0 {
		t.Fatal("the key outlived its TTL without renewals")
	}
	if l.Err() != nil || l.Backend() != "postgres" {
		t.Fatalf("during the outage: backend %q, err %v; log:\n%s", l.Backend(), l.Err(), logs)
	}
	proxy.Restore()
	deadline := time.Now().Add(15 * time.Second)
	for {
		// The key is written before the lock records its backend: wait for both.
		if v, _ := direct.Get(t.Context(), lock.BackupKey).Result(); v == l.Value() && l.Backend() == "redis+postgres" {
			break
		}
		if time.Now().After(deadline) || l.Err() != nil {
			t.Fatalf("never took the Redis key back (err %v); log:\n%s", l.Err(), logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if l.Err() != nil || l.Backend() != "redis+postgres" {
		t.Fatalf("after the outage: backend %q, err %v", l.Backend(), l.Err())
	}
	if !logs.has("backup_lock_fallback") || !logs.has("backup_lock_redis_recovered") {
		t.Fatalf("log:\n%s", logs)
	}
}
