package hub_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hubexport/hubexport/internal/hub"
	"github.com/hubexport/hubexport/internal/seed"
	"github.com/hubexport/hubexport/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// seedNow is the seeded hub's Now: seeded probe logs end there. It is in the past, so the
// keys the seed expires relative to it are expired for the database's now() too.
var seedNow = time.Date(2026, 1, 29, 10, 30, 0, 0, time.UTC)

// fixtureAt is the probe fixture's base time, after every seeded probe log, so that a time
// range starting there selects the fixture alone. In Asia/Shanghai it is 23:59:00.
var fixtureAt = time.Date(2026, 2, 1, 15, 59, 0, 0, time.UTC)

// Fixture endpoints: no seeded probe log belongs to them.
const (
	endpointA = 101
	endpointB = 102
)

// fixtureProbes are hand-made probe logs on endpoints A and B: every rendering case of the spec's
// line format, search targets with LIKE wildcards in them, and a created_at tie across
// endpoints (10004 and 10012).
const (
	fixtureEndpoints = `
INSERT INTO provider_endpoints (id, vendor_id, provider_type, url, label) VALUES
	(101, 1, 'claude', 'https://fixture-a.example', 'fixture A'),
	(102, 1, 'claude', 'https://fixture-b.example', 'fixture B')`
	fixtureProbes = `
INSERT INTO provider_endpoint_probe_logs (id, endpoint_id, ok, status_code, latency_ms, error_type, error_message, created_at) VALUES
	(10001, 101, true,  200,  45,   NULL, NULL, $1::timestamptz + interval '10 s'),
	(10002, 101, true,  200,  999,  NULL, NULL, $1::timestamptz + interval '20 s'),
	(10003, 101, true,  200,  1005, NULL, NULL, $1::timestamptz + interval '30 s'),
	(10004, 101, true,  200,  1125, NULL, NULL, $1::timestamptz + interval '40 s'),
	(10005, 101, true,  200,  2000, NULL, NULL, $1::timestamptz + interval '50 s'),
	(10006, 101, false, NULL, NULL, 'timeout', 'The operation was aborted due to timeout', $1::timestamptz + interval '60 s'),
	(10007, 101, false, 502,  1500, 'http_5xx', 'HTTP 502 Bad Gateway', $1::timestamptz + interval '70 s'),
	(10008, 101, true,  NULL, 120,  NULL, NULL, $1::timestamptz + interval '80 s'),
	(10009, 102, false, NULL, 30,   'network_error', 'fetch failed: connect ECONNREFUSED', $1::timestamptz + interval '15 s'),
	(10010, 102, false, 500,  80,   'http_5xx', 'upload 100% failed', $1::timestamptz + interval '25 s'),
	(10011, 102, false, 503,  90,   'http_5xx', 'path a_b\c broken', $1::timestamptz + interval '35 s'),
	(10012, 102, true,  200,  300,  NULL, NULL, $1::timestamptz + interval '40 s'),
	(10013, 102, false, 504,  60,   'http_5xx', 'proxy a-b mismatch', $1::timestamptz + interval '45 s'),
	(10014, 102, true,  401,  0,    NULL, NULL, $1::timestamptz + interval '55 s')`
)

// buildHub seeds a small hub and adds the probe fixture: the template every test clones.
func buildHub(ctx context.Context, dsn string) error {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := seed.Run(ctx, pool, seed.Options{Rows: 300, Seed: 1, Now: seedNow}); err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, fixtureEndpoints); err != nil {
		return fmt.Errorf("fixture endpoints: %w", err)
	}
	if _, err := pool.Exec(ctx, fixtureProbes, fixtureAt); err != nil {
		return fmt.Errorf("fixture probes: %w", err)
	}
	return nil
}

// setup returns a fresh seeded hub: its pool (for changing rows) and a DB over it.
func setup(t *testing.T) (*pgxpool.Pool, *hub.DB) {
	t.Helper()
	dsn := testenv.PostgresFrom(t, "hub-seeded", buildHub)
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool, hub.New(pool)
}
