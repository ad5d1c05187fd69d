package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestTestBinaryLeavesNothingBehind runs this package's tests (none of them,
// but TestMain builds the hubexport binary all the same) with a temporary
// directory of its own, and checks that the directory is empty afterwards:
// `make test` once left a 75 MB binary in /tmp on every run.
func TestTestBinaryLeavesNothingBehind(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the package's tests again")
	}
	tmp := t.TempDir()
	cmd := exec.Command("go", "test", "-count=1", "-run", "^$", ".")
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go test: %v\n%s", err, out)
	}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if len(left) > 0 {
		t.Errorf("the test binary left %s behind in its temporary directory", strings.Join(left, ", "))
	}
}
