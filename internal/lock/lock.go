package lock

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
)

var (
	// ErrHeld: someone else holds the lease.
	ErrHeld = errors.New("lock: held by another holder")
	// ErrLost: the lease expired or was taken over; the holder must stop.
	ErrLost = errors.New("lock: lease lost")
)

// Only the holder (the one who knows the value) may renew or delete.
var (
	renewScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0`)
	releaseScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0`)
)

// takeOverScript sets KEYS[1] to ARGV[2] for ARGV[3] ms only if its value
// starts with ARGV[1]: the holder named there is being replaced by itself.
var takeOverScript = redis.NewScript(`local v = redis.call("GET", KEYS[1])
if v and string.sub(v, 1, string.len(ARGV[1])) == ARGV[1] then
  redis.call("SET", KEYS[1], ARGV[2], "PX", ARGV[3])
  return 1
end
return 0`)

// TakeOver sets key to value for ttl if its value starts with prefix
// (compare-and-set), and returns ErrHeld otherwise (a free key included).
// It lets a holder whose earlier incarnation died take its own stale lock
// at once instead of waiting for it to expire.
func TakeOver(ctx context.Context, rdb redis.UniversalClient, key, prefix, value string, ttl time.Duration) (*Lease, error) {
	n, err := takeOverScript.Run(ctx, rdb, []string{key}, prefix, value, ttl.Milliseconds()).Int()
	if err != nil {
		return nil, fmt.Errorf("lock: take over %s: %w", key, err)
	}
	if n == 0 {
		return nil, ErrHeld
	}
	return &Lease{rdb: rdb, key: key, value: value, ttl: ttl}, nil
}

// Lease is a held lock.
type Lease struct {
	rdb   redis.UniversalClient
	key   string
	value string
	ttl   time.Duration
}

// NewValue returns a unique lease value.
func NewValue() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Acquire takes key for ttl with a fresh unique value, or returns ErrHeld.
func Acquire(ctx context.Context, rdb redis.UniversalClient, key string, ttl time.Duration) (*Lease, error) {
	return AcquireValue(ctx, rdb, key, NewValue(), ttl)
}

// AcquireValue is Acquire with a caller-chosen value (a value that also
// identifies the holder elsewhere).
func AcquireValue(ctx context.Context, rdb redis.UniversalClient, key, value string, ttl time.Duration) (*Lease, error) {
	ok, err := rdb.SetNX(ctx, key, value, ttl).Result()
	if err != nil {
		return nil, fmt.Errorf("lock: acquire %s: %w", key, err)
	}
	if !ok {
		return nil, ErrHeld
	}
	return &Lease{rdb: rdb, key: key, value: value, ttl: ttl}, nil
}

// Value is the lease's unique value.
func (l *Lease) Value() string { return l.value }

// Key is the locked key.
func (l *Lease) Key() string { return l.key }

// Renew extends the lease to a full TTL, or returns ErrLost.
func (l *Lease) Renew(ctx context.Context) error {
	n, err := renewScript.Run(ctx, l.rdb, []string{l.key}, l.value, l.ttl.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("lock: renew %s: %w", l.key, err)
	}
	if n == 0 {
		return ErrLost
	}
	return nil
}

// Release gives the lease up if it is still held; releasing a lost lease
// is not an error.
func (l *Lease) Release(ctx context.Context) error {
	if err := releaseScript.Run(ctx, l.rdb, []string{l.key}, l.value).Err(); err != nil {
		return fmt.Errorf("lock: release %s: %w", l.key, err)
	}
	return nil
}

// KeepOptions tune Lease.Keep. Zero values take the defaults.
type KeepOptions struct {
	// Every is how often the lease is renewed (default a third of its TTL).
	Every time.Duration
	// Check, if set, runs after each renewal, failed or not: a holder's own
	// conditions for going on (the job is still its attempt's; the session
	// of a lock it also holds is alive). An error from Check ends Keep.
	Check func(ctx context.Context) error
	// Log, if set, hears when renewals start failing and when they recover.
	Log *slog.Logger
}

// errExpired: renewals failed for a whole TTL, so the key has expired,
// though nobody may have taken it since.
var errExpired = errors.New("renewals failed for a whole TTL")

// Keep renews the lease until ctx ends, returning nil then. Otherwise it
// returns why the holder must stop: ErrLost as soon as the key is found
// gone or taken; ErrLost once renewals have failed for a whole TTL (the key
// has expired by then); or what o.Check returned. Each Redis call is bounded
// by the interval, so a Redis that stopped answering does not hold up the
// checks.
func (l *Lease) Keep(ctx context.Context, o KeepOptions) error {
	every := o.Every
	if every <= 0 {
		every = l.ttl / 3
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	lastOK := time.Now()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		opCtx, cancel := context.WithTimeout(ctx, opTimeout(every))
		err := l.Renew(opCtx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil:
			lastOK = time.Now()
			if failing {
				log.InfoContext(ctx, "lease_renew_recovered", "lock_key", l.key)
				failing = false
			}
		case errors.Is(err, ErrLost):
			return err
		default:
			if !failing {
				log.WarnContext(ctx, "lease_renew_failed", "lock_key", l.key, "error", err)
				failing = true
			}
			if time.Since(lastOK) >= l.ttl {
				return fmt.Errorf("%w: %w (%s): %w", ErrLost, errExpired, l.ttl, err)
			}
		}
		if o.Check != nil {
			if err := o.Check(ctx); err != nil {
				return err
			}
		}
	}
}

// opTimeout bounds one call of a keeper that wakes every interval.
func opTimeout(every time.Duration) time.Duration { return min(every, 10*time.Second) }
