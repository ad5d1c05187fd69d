package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/hubexport/hubexport/internal/localserver"
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
		harness.root, harness.rootErr = localserver.TempDir(rootPrefix)
		if harness.rootErr != nil {
			harness.rootErr = fmt.Errorf("testenv: %w", harness.rootErr)
		}
	})
	return harness.root, harness.rootErr
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
