// Package testenv gives tests real servers to talk to: PostgreSQL, Redis and an S3 server that
// verifies SigV4 signatures (versitygw), plus a TCP proxy that can cut a connection mid-test.
//
// Every package whose tests use it wraps its TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// When TEST_DATABASE_URL, TEST_REDIS_URL or TEST_S3_ENDPOINT (with TEST_S3_ACCESS_KEY,
// TEST_S3_SECRET_KEY and optionally TEST_S3_REGION) are set, those servers are used. Otherwise the
// harness starts throwaway servers on free loopback ports: one PostgreSQL and one versitygw per
// test binary (started on first use), one redis-server per test. Main stops them and removes their
// temporary directories. Children are started in their own process group with a parent-death
// signal, so they die with the test binary even when it crashes; a crashed binary's temporary
// directory is removed by the next binary that starts.
//
// Isolation: each test gets its own database, Redis database (or server) and bucket, so tests may
// use t.Parallel.
//
// A test that needs a server the harness cannot start fails with a message saying what to
// install. Under -short it is skipped instead.
//
// This package is imported only by tests. Of this module's packages it imports only
// internal/localserver, which starts the PostgreSQL and Redis servers.
package testenv
