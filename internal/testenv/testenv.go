package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// Main wraps a package's TestMain: it runs the tests, then stops every server the harness started.
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// It deliberately installs no signal handler: tests of graceful shutdown send SIGINT to their own
// process, and a handler here would tear the servers down under them. Children die with the
// binary anyway (parent-death signal), and leftover directories are swept by the next run.
func Main(m *testing.M) {
	os.Exit(Run(m))
}

// Run is Main without the exit: it runs the tests, stops every server the harness started and
// returns the exit code, so a TestMain can clean up after it (deferred calls do not run past
// os.Exit).
func Run(m *testing.M) int {
	code := m.Run()
	shutdown()
	return code
}

var harness struct {
	mu    sync.Mutex
	stops []func() // run in reverse order by shutdown

	rootOnce sync.Once
	root     string
	rootErr  error
}

// atExit registers f to run when Main finishes.
func atExit(f func()) {
	harness.mu.Lock()
	defer harness.mu.Unlock()
	harness.stops = append(harness.stops, f)
}

func shutdown() {
	harness.mu.Lock()
	stops := harness.stops
	harness.stops = nil
	harness.mu.Unlock()
	for i := len(stops) - 1; i >= 0; i-- {
		stops[i]()
	}
	if harness.root != "" {
		_ = os.RemoveAll(harness.root)
	}
}

const rootPrefix = "hxt-testenv-"

// rootDir is the per-binary temporary directory holding server data and logs. Its name carries
// the PID so a later binary can tell that its owner is gone.
func rootDir() (string, error) {
	harness.rootOnce.Do(func() {
		sweepStale()
		dir, err := os.MkdirTemp("", rootPrefix+strconv.Itoa(os.Getpid())+"-")
		if err != nil {
			harness.rootErr = fmt.Errorf("testenv: create temp dir: %w", err)
			return
		}
		// Postgres runs as another user when we are root and must traverse this directory.
		if err := os.Chmod(dir, 0o711); err != nil {
			harness.rootErr = fmt.Errorf("testenv: chmod temp dir: %w", err)
			return
		}
		harness.root = dir
	})
	return harness.root, harness.rootErr
}

// sweepStale removes the directories of harness runs whose process no longer exists (a binary
// that panicked or was killed never reaches shutdown).
func sweepStale() {
	matches, _ := filepath.Glob(filepath.Join(os.TempDir(), rootPrefix+"*"))
	for _, dir := range matches {
		rest := strings.TrimPrefix(filepath.Base(dir), rootPrefix)
		pidStr, _, ok := strings.Cut(rest, "-")
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = os.RemoveAll(dir)
		}
	}
}

// unavailable reports that a server the test needs could not be provided: a failure, except
// under -short where integration tests are optional.
func unavailable(t testing.TB, err error) {
	t.Helper()
	if testing.Short() {
		t.Skipf("skipped under -short: %v", err)
	}
	t.Fatal(err)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails on Linux
	return hex.EncodeToString(b)
}

// freePort asks the kernel for a free loopback port. Another process may take it before the
// server binds it; callers retry on "address in use".
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("testenv: find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
