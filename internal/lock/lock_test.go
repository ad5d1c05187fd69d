package lock_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hubexport/hubexport/internal/lock"
	"github.com/hubexport/hubexport/internal/testenv"
)

// Lease.Keep is the one renewal loop: the job runner and the backup lock both use it.
func TestLeaseKeep(t *testing.T) {
	t.Parallel()
	errMine := errors.New("the holder's own reason")
	for _, tc := range []struct {
		name string
		// during runs once the lease is held; check is Keep's Check.
		during  func(t *testing.T, env keepEnv)
		check   func(ctx context.Context) error
		want    error // nil: Keep runs until its context ends
		wantKey bool  // the key still holds the lease afterwards
	}{
		{name: "RenewsPastTTL", wantKey: true,
			during: func(t *testing.T, env keepEnv) { time.Sleep(3 * env.ttl) }},
		{name: "KeyDeleted", want: lock.ErrLost,
			during: func(t *testing.T, env keepEnv) { env.direct.Del(t.Context(), env.key) }},
		{name: "KeyTaken", want: lock.ErrLost,
			during: func(t *testing.T, env keepEnv) { env.direct.Set(t.Context(), env.key, "someone else", time.Minute) }},
		{name: "RedisUnreachableForTTL", want: lock.ErrLost,
			during: func(t *testing.T, env keepEnv) { env.proxy.Cut() }},
		{name: "CheckFails", want: errMine, wantKey: true,
			check: func(context.Context) error { return errMine }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := testenv.NewRedis(t)
			env := keepEnv{proxy: testenv.NewProxy(t, srv.Addr), direct: redisClient(t, srv.Addr, srv.DB),
				key: "hubexport:test:lease", ttl: 300 * time.Millisecond}
			rdb := redisClient(t, env.proxy.Addr(), srv.DB)
			lease, err := lock.Acquire(t.Context(), rdb, env.key, env.ttl)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- lease.Keep(ctx, lock.KeepOptions{Every: env.ttl / 6, Check: tc.check}) }()
			if tc.during != nil {
				tc.during(t, env)
			}
			if tc.want == nil {
				cancel()
			}
			var got error
			select {
			case got = <-done:
			case <-time.After(3 * env.ttl):
				t.Fatal("Keep did not return")
			}
			cancel()
			if tc.want == nil && got != nil || tc.want != nil && !errors.Is(got, tc.want) {
				t.Fatalf("Keep returned %v, want %v", got, tc.want)
			}
			if v, _ := env.direct.Get(t.Context(), env.key).Result(); (v == lease.Value()) != tc.wantKey {
				t.Fatalf("the key holds %q afterwards", v)
			}
		})
	}
}

type keepEnv struct {
	proxy  *testenv.Proxy
	direct *redis.Client // Redis without the proxy
	key    string
	ttl    time.Duration
}
