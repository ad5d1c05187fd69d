// Package localserver starts throwaway PostgreSQL and Redis servers from the machine's own
// binaries (Debian: the postgresql and redis-server packages), listening on free loopback ports
// with their data in a directory the caller owns. The test harness (internal/testenv) and
// `hubexport demo` use it.
//
// Servers run in their own process group with SIGKILL as their parent-death signal, so they
// die with the process that started them even when it crashes; PostgreSQL runs as the
// `postgres` OS user when started by root, since it refuses to run as root. TempDir names its
// directories after the owning process so a later run can remove those of a crashed one.
//
// It must not import any other package of this module.
package localserver
