package lock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// The backup lock is CCH's: the same key, the same SET NX PX, the same TTL (hub-facts §3.3),
// so a dump or restore started from CCH's web UI and one started here never overlap.
const (
	BackupKey = "database:backup:lock"
	BackupTTL = 5 * time.Minute
	// DefaultBackupWait is how long AcquireBackup waits for another holder by default: longer
	// than BackupTTL, so a lock left by a crashed CCH process expires while we wait.
	DefaultBackupWait = 15 * time.Minute
)

// backupAdvisoryKey is the PostgreSQL advisory lock every hubexport instance takes with the
// Redis key ("hxbackup" in ASCII). CCH does not know it; it is what keeps two hubexport
// instances apart when Redis is down or flapping.
const backupAdvisoryKey int64 = 0x68786261636b7570

// valuePrefix marks lock values set by hubexport; CCH's look like "<ms>-<base36>".
const valuePrefix = "hubexport:"

// BackupOptions tune AcquireBackup. Zero values take the defaults.
type BackupOptions struct {
	// Holder names this holder in the lock value (a job id), so a waiter can say who it
	// waits for.
	Holder string
	// TTL is the Redis key's TTL (default BackupTTL); RenewEvery how often it is renewed
	// (default TTL/5: 60 s, four chances before it would expire).
	TTL, RenewEvery time.Duration
	// Wait is how long to wait for another holder before failing with a *HeldError
	// (default DefaultBackupWait). Negative: do not wait.
	Wait time.Duration
	// MinBackoff and MaxBackoff bound the pause between attempts (default 1 s and 15 s).
	MinBackoff, MaxBackoff time.Duration
	// OnWait is called before each pause while someone else holds the lock ("waiting for
	// the backup lock").
	OnWait func(BackupHolder)
	Log    *slog.Logger
}

// BackupHolder describes who holds the backup lock while we wait.
type BackupHolder struct {
	Backend   string        // "redis" or "postgres"
	Value     string        // the Redis key's value
	ExpiresIn time.Duration // the Redis key's remaining TTL (0: unknown)
	PID       int           // the PostgreSQL backend holding the advisory lock
	Waited    time.Duration // how long we have waited so far
}

// ByCCH reports whether the holder is not a hubexport instance: CCH's web UI, most likely.
func (h BackupHolder) ByCCH() bool {
	return h.Backend == "redis" && !strings.HasPrefix(h.Value, valuePrefix)
}

func (h BackupHolder) String() string {
	switch {
	case h.Backend == "postgres":
		return fmt.Sprintf("another hubexport backup or restore (PostgreSQL backend %d)", h.PID)
	case h.ByCCH():
		s := "a backup or restore started from CCH"
		if h.ExpiresIn > 0 {
			s += fmt.Sprintf(", lock expires in %s", h.ExpiresIn.Round(time.Second))
		}
		return s
	}
	name, _, _ := strings.Cut(strings.TrimPrefix(h.Value, valuePrefix), ":")
	return "hubexport " + name
}

// BackupLock is the held backup lock. The caller must stop its work when Lost fires and must
// call Release.
type BackupLock struct {
	rdb    redis.UniversalClient
	holder string
	value  string
	ttl    time.Duration
	every  time.Duration
	log    *slog.Logger
	start  time.Time

	mu    sync.Mutex
	lease *Lease    // nil while Redis is unusable (the advisory lock alone holds)
	adv   *pgx.Conn // nil without PostgreSQL

	lost     chan struct{}
	lostErr  error
	lostOnce sync.Once
	stop     context.CancelFunc
	done     chan struct{}

	releaseOnce sync.Once
	releaseErr  error
}

// AcquireBackup takes the backup lock: the PostgreSQL advisory lock on a dedicated connection
// from pool (when pool is not nil), then CCH's Redis key. While another holder has either, it
// calls OnWait and retries with backoff until the Wait deadline, then fails with a *HeldError
// (errors.Is(err, ErrHeld)). When Redis cannot be
// used it falls back to the advisory lock alone, logging backup_lock_fallback; the keeper
// takes the Redis key as soon as Redis is back. With neither Redis nor PostgreSQL it fails.
//
// Once acquired, the Redis key is renewed every RenewEvery by compare-and-pexpire. Lost fires
// when the key is found gone or taken, when renewals have failed for a whole TTL with no
// advisory lock to fall back on, or when the fallback's connection dies.
func AcquireBackup(ctx context.Context, rdb redis.UniversalClient, pool *pgxpool.Pool, o BackupOptions) (*BackupLock, error) {
	if rdb == nil && pool == nil {
		return nil, errors.New("lock: backup lock needs Redis or PostgreSQL")
	}
	o = o.withDefaults()
	holder := o.Holder
	if holder == "" {
		holder = "hubexport"
	}
	l := &BackupLock{
		rdb: rdb, holder: o.Holder, value: valuePrefix + holder + ":" + NewValue(), ttl: o.TTL, every: o.RenewEvery,
		log: o.Log.With("lock_key", BackupKey), lost: make(chan struct{}), done: make(chan struct{}),
	}
	w := &waiter{o: o, log: l.log, start: time.Now(), deadline: time.Now().Add(o.Wait), backoff: o.MinBackoff}

	var pgErr error
	if pool != nil {
		l.adv, pgErr = acquireAdvisory(ctx, pool, w)
		if pgErr != nil && (errors.Is(pgErr, ErrHeld) || ctx.Err() != nil || rdb == nil) {
			return nil, pgErr
		}
		if pgErr != nil {
			l.log.WarnContext(ctx, "backup_lock_postgres_unavailable", "error", pgErr)
		}
	}

	if rdb != nil {
		for {
			lease, err := l.acquireRedis(ctx)
			if err == nil {
				l.lease = lease
				break
			}
			if errors.Is(err, ErrHeld) {
				h := redisHolder(ctx, rdb)
				if werr := w.wait(ctx, h); werr != nil {
					l.closeAdvisory(ctx)
					return nil, werr
				}
				continue
			}
			if ctx.Err() != nil {
				l.closeAdvisory(ctx)
				return nil, fmt.Errorf("lock: backup lock: %w", context.Cause(ctx))
			}
			if l.adv == nil {
				return nil, fmt.Errorf("lock: backup lock: redis unusable (%w) and postgres unusable (%v)", err, pgErr)
			}
			l.log.WarnContext(ctx, "backup_lock_fallback", "backend", "postgres", "error", err)
			break
		}
	}

	l.start = time.Now()
	l.log.InfoContext(ctx, "backup_lock_acquired", "backend", l.Backend(), "lock_value", l.value,
		"waited_ms", time.Since(w.start).Milliseconds())
	kctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l.stop = cancel
	go l.keep(kctx)
	return l, nil
}

// acquireRedis takes CCH's key. A key left by an earlier attempt of the same
// holder (a job whose worker died) is taken over at once: that attempt is
// gone, since this one got past the advisory lock (which dies with its
// session) and, for a job, holds the job's own lease.
func (l *BackupLock) acquireRedis(ctx context.Context) (*Lease, error) {
	lease, err := AcquireValue(ctx, l.rdb, BackupKey, l.value, l.ttl)
	if !errors.Is(err, ErrHeld) || l.holder == "" {
		return lease, err
	}
	stale := redisHolder(ctx, l.rdb)
	lease, err = TakeOver(ctx, l.rdb, BackupKey, valuePrefix+l.holder+":", l.value, l.ttl)
	if err == nil {
		l.log.InfoContext(ctx, "backup_lock_taken_over", "stale_value", stale.Value, "lock_value", l.value)
	}
	return lease, err
}

func (o BackupOptions) withDefaults() BackupOptions {
	if o.TTL <= 0 {
		o.TTL = BackupTTL
	}
	if o.RenewEvery <= 0 {
		o.RenewEvery = o.TTL / 5
	}
	if o.Wait == 0 {
		o.Wait = DefaultBackupWait
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 15 * time.Second
	}
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o
}

// waiter paces the retries of one AcquireBackup call against its deadline.
type waiter struct {
	o        BackupOptions
	log      *slog.Logger
	start    time.Time
	deadline time.Time
	backoff  time.Duration
	last     BackupHolder
	logged   bool
}

// wait reports h to OnWait and sleeps before the next attempt, or fails with
// a *HeldError when the deadline would pass first.
func (w *waiter) wait(ctx context.Context, h BackupHolder) error {
	h.Waited = time.Since(w.start)
	if !w.logged || h.Value != w.last.Value || h.PID != w.last.PID {
		w.log.InfoContext(ctx, "backup_lock_conflict", "holder", h.String(), "holder_backend", h.Backend,
			"holder_value", h.Value, "holder_pid", h.PID, "expires_in_ms", h.ExpiresIn.Milliseconds())
		w.last, w.logged = h, true
	}
	// ±20% jitter, so instances that found the lock taken together do not retry together.
	pause := time.Duration(float64(w.backoff) * (0.8 + 0.4*rand.Float64()))
	w.backoff = min(w.backoff*2, w.o.MaxBackoff)
	if time.Now().Add(pause).After(w.deadline) {
		w.log.WarnContext(ctx, "backup_lock_conflict", "holder", h.String(), "gave_up", true, "waited_ms", h.Waited.Milliseconds())
		return &HeldError{Holder: h}
	}
	if w.o.OnWait != nil {
		w.o.OnWait(h)
	}
	t := time.NewTimer(pause)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("lock: wait for the backup lock: %w", context.Cause(ctx))
	case <-t.C:
		return nil
	}
}

// HeldError is AcquireBackup's error when another holder kept the lock past the wait. It wraps
// ErrHeld; the caller turns it into what its user reads.
type HeldError struct {
	Holder BackupHolder // Waited says how long we waited
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("lock: backup lock held by %s (waited %s)", e.Holder, e.Holder.Waited.Round(time.Second))
}

func (e *HeldError) Unwrap() error { return ErrHeld }

// redisHolder reads who holds the key, best effort.
func redisHolder(ctx context.Context, rdb redis.UniversalClient) BackupHolder {
	h := BackupHolder{Backend: "redis"}
	h.Value, _ = rdb.Get(ctx, BackupKey).Result()
	if ttl, err := rdb.PTTL(ctx, BackupKey).Result(); err == nil && ttl > 0 {
		h.ExpiresIn = ttl
	}
	return h
}

// acquireAdvisory takes the advisory lock on a connection taken out of the pool for good: a
// session lock lives as long as its connection, which must not go back to the pool.
func acquireAdvisory(ctx context.Context, pool *pgxpool.Pool, w *waiter) (*pgx.Conn, error) {
	pc, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock: backup lock: postgres: %w", err)
	}
	conn := pc.Hijack()
	closeConn := func() { _ = conn.Close(context.WithoutCancel(ctx)) }
	// Shows in pg_stat_activity, for whoever wonders what holds the lock.
	if _, err := conn.Exec(ctx, "SET application_name = 'hubexport backup lock'"); err != nil {
		closeConn()
		return nil, fmt.Errorf("lock: backup lock: postgres: %w", err)
	}
	for {
		var ok bool
		if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", backupAdvisoryKey).Scan(&ok); err != nil {
			closeConn()
			return nil, fmt.Errorf("lock: backup lock: postgres: %w", err)
		}
		if ok {
			return conn, nil
		}
		if err := w.wait(ctx, advisoryHolder(ctx, conn)); err != nil {
			closeConn()
			return nil, err
		}
	}
}

// advisoryHolder finds the backend holding the advisory lock, best effort. A bigint key shows
// in pg_locks as classid (high half), objid (low half) and objsubid 1.
func advisoryHolder(ctx context.Context, conn *pgx.Conn) BackupHolder {
	h := BackupHolder{Backend: "postgres"}
	_ = conn.QueryRow(ctx, `SELECT pid FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND objsubid = 1
		  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
		  AND classid = ($1::bigint >> 32)::oid AND objid = ($1::bigint & 4294967295)::oid
		LIMIT 1`, backupAdvisoryKey).Scan(&h.PID)
	return h
}

// Value is the lock's unique value (the Redis key's value while it is held there).
func (l *BackupLock) Value() string { return l.value }

// Backend says what holds the lock now: "redis+postgres", "redis" or "postgres".
func (l *BackupLock) Backend() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var parts []string
	if l.lease != nil {
		parts = append(parts, "redis")
	}
	if l.adv != nil {
		parts = append(parts, "postgres")
	}
	return strings.Join(parts, "+")
}

// Lost is closed when the lock is lost; Err then says why.
func (l *BackupLock) Lost() <-chan struct{} { return l.lost }

// Err is why the lock was lost (wrapping ErrLost), nil while it holds.
func (l *BackupLock) Err() error {
	select {
	case <-l.lost:
		return l.lostErr
	default:
		return nil
	}
}

// Context returns a context that ends with cause Err() when the lock is lost, for the work the
// lock protects (a pg_dump dies with it).
func (l *BackupLock) Context(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	go func() {
		select {
		case <-l.lost:
			cancel(l.lostErr)
		case <-ctx.Done():
		}
	}()
	return ctx, func() { cancel(context.Canceled) }
}

func (l *BackupLock) markLost(ctx context.Context, err error) {
	l.lostOnce.Do(func() {
		l.lostErr = err
		close(l.lost)
		l.log.WarnContext(ctx, "backup_lock_lost", "error", err, "lock_value", l.value,
			"held_ms", time.Since(l.start).Milliseconds())
	})
}

// keep holds the lock until Release or loss: it renews the Redis key while it has it, takes the key
// back while the advisory lock alone holds, and watches the advisory connection throughout.
func (l *BackupLock) keep(ctx context.Context) {
	defer close(l.done)
	for ctx.Err() == nil {
		var err error
		if lease := l.redisLease(); lease != nil {
			err = lease.Keep(ctx, KeepOptions{Every: l.every, Check: l.checkAdvisory, Log: l.log})
			switch {
			case errors.Is(err, errExpired) && l.hasAdvisory():
				// The key has expired, but nobody may have taken it: hold on the advisory lock
				// and take the key again as soon as Redis answers, as when Redis was down from
				// the start.
				l.setLease(nil)
				l.log.WarnContext(ctx, "backup_lock_fallback", "backend", "postgres", "error", err)
				continue
			case errors.Is(err, errExpired):
				err = fmt.Errorf("lock: backup lock: %w", err)
			case errors.Is(err, ErrLost):
				// Gone or someone else's: whoever took it may be dumping or restoring now.
				err = fmt.Errorf("lock: backup lock: %w (key %s deleted, expired or taken over)", ErrLost, BackupKey)
			}
		} else {
			err = l.regain(ctx)
		}
		if err != nil && ctx.Err() == nil {
			l.markLost(ctx, err)
			return
		}
	}
}

// regain holds the lock on the advisory lock alone, taking CCH's key as soon as Redis answers
// again. It returns nil once it has the key or ctx has ended, and otherwise why the lock is
// lost.
func (l *BackupLock) regain(ctx context.Context) error {
	t := time.NewTicker(l.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if l.rdb != nil {
			opCtx, cancel := context.WithTimeout(ctx, opTimeout(l.every))
			nl, err := l.acquireRedis(opCtx)
			var h BackupHolder
			if errors.Is(err, ErrHeld) {
				h = redisHolder(opCtx, l.rdb)
			}
			cancel()
			switch {
			case ctx.Err() != nil:
				return nil
			case err == nil:
				l.setLease(nl)
				l.log.InfoContext(ctx, "backup_lock_redis_recovered", "backend", l.Backend())
				return nil
			case errors.Is(err, ErrHeld):
				return fmt.Errorf("lock: backup lock: %w: %s took the Redis key while Redis was unreachable from here", ErrLost, h)
			}
		}
		if err := l.checkAdvisory(ctx); err != nil {
			return err
		}
	}
}

// checkAdvisory checks the advisory lock's connection. A failed one is dropped; the lock is lost
// when the Redis key does not hold it either.
func (l *BackupLock) checkAdvisory(ctx context.Context) error {
	l.mu.Lock()
	adv := l.adv
	l.mu.Unlock()
	if adv == nil {
		return nil
	}
	opCtx, cancel := context.WithTimeout(ctx, opTimeout(l.every))
	_, err := adv.Exec(opCtx, "SELECT 1")
	cancel()
	if err == nil || ctx.Err() != nil {
		return nil
	}
	l.mu.Lock()
	l.adv = nil
	hasLease := l.lease != nil
	l.mu.Unlock()
	_ = adv.Close(context.Background())
	l.log.WarnContext(ctx, "backup_lock_postgres_lost", "error", err, "redis_held", hasLease)
	if !hasLease {
		return fmt.Errorf("lock: backup lock: %w: the PostgreSQL connection holding it failed: %w", ErrLost, err)
	}
	return nil
}

func (l *BackupLock) redisLease() *Lease {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lease
}

func (l *BackupLock) setLease(lease *Lease) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lease = lease
}

func (l *BackupLock) hasAdvisory() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.adv != nil
}

// Release stops renewing and gives the lock up: compare-and-delete on the Redis key (a key that
// is no longer ours is left alone) and the end of the advisory lock's session. Safe to call
// more than once and after the lock was lost.
func (l *BackupLock) Release(ctx context.Context) error {
	l.releaseOnce.Do(func() {
		l.stop()
		<-l.done
		l.mu.Lock()
		lease := l.lease
		l.mu.Unlock()
		if lease != nil {
			if err := lease.Release(ctx); err != nil {
				// The key expires within a TTL anyway.
				l.log.WarnContext(ctx, "database_export_lock_release_error", "error", err, "lock_value", l.value)
				l.releaseErr = err
			}
		}
		l.closeAdvisory(ctx)
		l.log.InfoContext(ctx, "backup_lock_released", "lock_value", l.value, "held_ms", time.Since(l.start).Milliseconds())
	})
	return l.releaseErr
}

func (l *BackupLock) closeAdvisory(ctx context.Context) {
	l.mu.Lock()
	adv := l.adv
	l.adv = nil
	l.mu.Unlock()
	if adv == nil {
		return
	}
	// Closing the session ends the lock; the explicit unlock just makes that immediate even if
	// the close is slow.
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, _ = adv.Exec(uctx, "SELECT pg_advisory_unlock($1)", backupAdvisoryKey)
	_ = adv.Close(uctx)
}
