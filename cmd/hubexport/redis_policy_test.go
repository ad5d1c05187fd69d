package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/hubexport/hubexport/internal/testenv"
)

// An evicting Redis is reported at start; noeviction is not.
func TestRedisEvictionPolicyWarning(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Redis")
	}
	r := testenv.NewRedis(t)
	opts, err := redis.ParseURL(r.URL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	ctx := context.Background()
	// The policy is server-wide: put back what was there (TEST_REDIS_URL
	// may be a shared server).
	before, err := rdb.ConfigGet(ctx, "maxmemory-policy").Result()
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.ConfigSet(ctx, "maxmemory-policy", before["maxmemory-policy"])

	for _, c := range []struct {
		policy string
		warns  bool
	}{{"allkeys-lru", true}, {"noeviction", false}} {
		if err := rdb.ConfigSet(ctx, "maxmemory-policy", c.policy).Err(); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		checkRedisPolicy(ctx, rdb, slog.New(slog.NewJSONHandler(&buf, nil)))
		got := strings.Contains(buf.String(), `"msg":"redis_eviction_policy"`) &&
			strings.Contains(buf.String(), `"maxmemory_policy":"`+c.policy+`"`)
		if got != c.warns || (!c.warns && buf.Len() > 0) {
			t.Errorf("policy %s: log %q", c.policy, buf.String())
		}
	}
}
