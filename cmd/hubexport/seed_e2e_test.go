package main

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/hubexport/hubexport/internal/seed"
	"github.com/hubexport/hubexport/internal/testenv"
)

// seed names the keys to sign in with and the sessions it left in Redis for session_request.
func TestSeedPrintsKeysAndSessions(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("needs PostgreSQL and Redis")
	}
	r := testenv.NewRedis(t)
	cmd := exec.Command(binary, "seed", "--rows", "500", "--sessions", "2")
	cmd.Env = []string{"DATABASE_URL=" + testenv.Postgres(t), "HUB_REDIS_URL=" + r.URL, "PATH=" + os.Getenv("PATH")}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("seed: %v\n%s", err, out)
	}
	for _, want := range []string{
		"\n  admin key: " + seed.AdminKey + "   (user \"" + seed.AdminUserName + "\", role admin",
		"\n  user key:  " + seed.UserKey + "   (user \"alice\"",
		"\n  session snapshots in HUB_REDIS_URL for 2 sessions, for session_request exports; they expire after 5m0s (CCH keeps them SESSION_TTL, 300s by default):\n",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("seed output lacks %q:\n%s", want, out)
		}
	}
	ids := regexp.MustCompile(`(?m)^    (sess_\w+)  requests \d+`).FindAllStringSubmatch(string(out), -1)
	if len(ids) != 2 {
		t.Fatalf("seed output names %d sessions, want 2:\n%s", len(ids), out)
	}
	opts, _ := redis.ParseURL(r.URL)
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	for _, id := range ids {
		if n, err := rdb.Exists(context.Background(), "session:"+id[1]+":seq").Result(); err != nil || n != 1 {
			t.Errorf("session %s has no :seq key in Redis (%v)", id[1], err)
		}
	}
}

// Without a Redis for the snapshots, seed stops before filling the database and says how to
// go on without them.
func TestSeedWithoutRedisTouchesNothing(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	dsn := testenv.Postgres(t)
	cmd := exec.Command(binary, "seed", "--rows", "10")
	cmd.Env = []string{"DATABASE_URL=" + dsn, "HUB_REDIS_URL=redis://" + freeAddr(t) + "/0", "PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "HUB_REDIS_URL") || !strings.Contains(string(out), "--sessions 0") {
		t.Fatalf("seed without Redis: %v\n%s", err, out)
	}
	pool := (&stack{t: t, dsn: dsn}).pool()
	if done, err := seed.Seeded(context.Background(), pool); err != nil || done {
		t.Errorf("database seeded (%v) after the Redis check failed: %v", done, err)
	}
}
