package scratch_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hubexport/hubexport/internal/scratch"
)

// With SCRATCH_HOLD_IN set, the test binary is a worker stand-in: it makes a
// scratch directory there, prints its path and waits to be killed.
func TestMain(m *testing.M) {
	if parent := os.Getenv("SCRATCH_HOLD_IN"); parent != "" {
		d, err := scratch.MkdirTemp(parent, "hubexport-xlsx-")
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println(d.Path)
		time.Sleep(time.Hour)
	}
	os.Exit(m.Run())
}

// holder starts a process holding a scratch directory in parent.
func holder(t *testing.T, parent string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "SCRATCH_HOLD_IN="+parent)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, parent) {
		t.Fatalf("holder said %q (%v)", line, err)
	}
	return cmd, strings.TrimSpace(line)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// Sweep removes the directories of processes that died (SIGKILL included)
// and keeps those of live ones, this process's own among them.
func TestSweep(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	own, err := scratch.MkdirTemp(parent, "hubexport-xlsx-")
	if err != nil {
		t.Fatal(err)
	}
	if want := "hubexport-xlsx-" + strconv.Itoa(os.Getpid()) + "-"; !strings.HasPrefix(filepath.Base(own.Path), want) {
		t.Fatalf("directory %s is not named %s...", own.Path, want)
	}
	if err := os.WriteFile(filepath.Join(own.Path, "sheet1.xml"), []byte("<x/>"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, theirs := holder(t, parent)
	// Entries from before locks: an old one is removed, a young one kept;
	// other names are never touched.
	oldDir, youngDir, other := filepath.Join(parent, "hubexport-xlsx-1"), filepath.Join(parent, "hubexport-xlsx-2"), filepath.Join(parent, "other-xlsx-3")
	for _, d := range []string{oldDir, youngDir, other} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	long := time.Now().Add(-scratch.UnlockedAge - time.Minute)
	for _, d := range []string{oldDir, other} {
		if err := os.Chtimes(d, long, long); err != nil {
			t.Fatal(err)
		}
	}

	removed, err := scratch.Sweep(parent, "hubexport-xlsx-")
	if err != nil || !slices.Equal(removed, []string{oldDir}) {
		t.Fatalf("sweep with the holder alive removed %v (%v), want only %s", removed, err, oldDir)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	removed, err = scratch.Sweep(parent, "hubexport-xlsx-")
	if err != nil || !slices.Equal(removed, []string{theirs}) {
		t.Fatalf("sweep after the holder was killed removed %v (%v), want %s", removed, err, theirs)
	}
	for _, p := range []string{own.Path, filepath.Join(own.Path, "sheet1.xml"), youngDir, other} {
		if !exists(p) {
			t.Errorf("%s was removed", p)
		}
	}
	if err := own.Remove(); err != nil || exists(own.Path) {
		t.Fatalf("Remove: %v, still there: %v", err, exists(own.Path))
	}
	if err := own.Remove(); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
}
