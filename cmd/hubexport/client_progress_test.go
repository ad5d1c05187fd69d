package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	apiclient "github.com/hubexport/hubexport/web/client"
)

func testJob(t *testing.T, raw string) *apiclient.Job {
	t.Helper()
	var j apiclient.Job
	if err := json.Unmarshal([]byte(raw), &j); err != nil {
		t.Fatal(err)
	}
	return &j
}

// TestSavedLine: the last line names a count only when it is not the
// size again (a backup's progress unit is bytes).
func TestSavedLine(t *testing.T) {
	t.Parallel()
	sum := strings.Repeat("ab", 32)
	backup := testJob(t, `{"id":"exp_1","status":"succeeded","progress":{"done":4737447,"total":0,"unit":"bytes","percent":100},
		"result":{"filename":"hub.dump","size_bytes":4737447,"sha256":"`+sum+`","rows":0}}`)
	if got, want := savedLine("hub.dump", backup), "saved hub.dump (4737447 bytes, sha256 "+sum+" verified)"; got != want {
		t.Errorf("backup:\n got %q\nwant %q", got, want)
	}
	probe := testJob(t, `{"id":"exp_2","status":"succeeded","progress":{"done":812,"total":812,"unit":"lines","percent":100},
		"result":{"filename":"p.txt","size_bytes":31544,"sha256":"`+sum+`","rows":812}}`)
	if got, want := savedLine("p.txt", probe), "saved p.txt (31544 bytes, 812 lines, sha256 "+sum+" verified)"; got != want {
		t.Errorf("probe logs:\n got %q\nwant %q", got, want)
	}
	empty := testJob(t, `{"id":"exp_3","status":"succeeded","progress":{"done":0,"total":0,"unit":"rows","percent":100},
		"result":{"filename":"u.csv","size_bytes":3,"sha256":"`+sum+`","rows":0}}`)
	if got := savedLine("u.csv", empty); !strings.Contains(got, "(3 bytes, 0 rows,") {
		t.Errorf("an empty usage export: %q", got)
	}
}

// frames splits what the bar drew into the lines it drew in place.
func frames(out string) []string {
	var fs []string
	for _, f := range strings.FieldsFunc(out, func(r rune) bool { return r == '\r' || r == '\n' }) {
		if f = strings.TrimSpace(f); f != "" {
			fs = append(fs, f)
		}
	}
	return fs
}

func progressJob(status string, done, total int64, unit string, percent float64) *apiclient.Job {
	return &apiclient.Job{ID: "exp_1", Status: apiclient.Status(status),
		Progress: apiclient.Progress{Done: done, Total: total, Unit: unit, Percent: percent}}
}

// TestJobBarUnknownTotal: a backup's bytes are shown as a count, never
// against a total or as a percent, until the job is done.
func TestJobBarUnknownTotal(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	c := &client{stderr: &out}
	bar := c.newJobBar()
	bar.update(progressJob("running", 4737447, 0, "bytes", 0))
	bar.update(progressJob("running", 9737447, 0, "bytes", 0))
	bar.update(progressJob("succeeded", 9737447, 0, "bytes", 100))
	bar.stop(true)
	fs := frames(out.String())
	if len(fs) != 3 {
		t.Fatalf("frames %q", fs)
	}
	for _, f := range fs {
		if strings.Contains(f, "%") || strings.Contains(f, "/") || strings.Contains(f, " of ") {
			t.Errorf("frame %q shows a total or a percent", f)
		}
	}
	if !strings.Contains(fs[0], "running 4.7 MB") || !strings.Contains(fs[1], "running 9.7 MB") || !strings.Contains(fs[2], "succeeded 9.7 MB") {
		t.Errorf("frames %q", fs)
	}
	if !strings.HasSuffix(out.String(), "\n") {
		t.Errorf("the bar does not end its line: %q", out.String())
	}
}

// TestJobBarEndsAtDone: a job that succeeds between two reports is drawn
// once, at 100 %, never as "succeeded" at the percent last seen.
func TestJobBarEndsAtDone(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	c := &client{stderr: &out}
	bar := c.newJobBar()
	bar.update(progressJob("queued", 0, 0, "", 0))
	bar.update(progressJob("running", 0, 1808, "rows", 0))
	bar.update(progressJob("succeeded", 1808, 1808, "rows", 100))
	bar.stop(true)
	fs := frames(out.String())
	if len(fs) < 3 || !strings.HasPrefix(fs[1], "running 0/1808 rows   0% |") || !strings.HasPrefix(fs[len(fs)-1], "succeeded 1808/1808 rows 100% |") {
		t.Fatalf("frames %q", fs)
	}
	for _, f := range fs {
		if strings.HasPrefix(f, "succeeded") && !strings.Contains(f, "100%") {
			t.Errorf("frame %q", f)
		}
	}
}

// TestCLIBackupProgressAndFile: a backup through the CLI shows its bytes
// with no total and no percent while it runs, ends with a saved line
// without a second count, and the file follows the umask (0666 &^ 027 =
// 0640), as curl -o makes it.
func TestCLIBackupProgressAndFile(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.start("serve")
	// Slow the dump down so the bar is drawn while it runs.
	release := s.holdTable("users")
	go func() { time.Sleep(1500 * time.Millisecond); release() }()

	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", `umask 027 && exec "$0" "$@"`, binary, "export", "backup",
		"--server", s.base, "--token", adminToken, "--mode", "exclude_logs", "--wait", "-o", "hub.dump")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\nstderr: %s", err, stderr.String())
	}
	fs := frames(stderr.String())
	last := fs[len(fs)-1]
	if !regexp.MustCompile(`^saved hub\.dump \(\d+ bytes, sha256 [0-9a-f]{64} verified\)$`).MatchString(last) {
		t.Errorf("last line %q", last)
	}
	// The job's frames (a spinner beside the state and the count) never
	// show a total or a percent; whether a "running" one is seen depends on
	// how fast the backup is (TestJobBarUnknownTotal draws them for sure).
	ended := false
	for _, f := range fs {
		if strings.HasPrefix(f, "download") || strings.HasPrefix(f, "saved") || strings.HasPrefix(f, "export ") {
			continue
		}
		if strings.Contains(f, "%") || strings.Contains(f, "/") || strings.Contains(f, " of ") {
			t.Errorf("frame %q shows a total or a percent", f)
		}
		ended = ended || regexp.MustCompile(`succeeded \d+(\.\d)? (B|kB|MB|GB)`).MatchString(f)
	}
	if !ended {
		t.Errorf("no frame of the succeeded backup with its size:\n%q", fs)
	}
	fi, err := os.Stat(filepath.Join(dir, "hub.dump"))
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o640 {
		t.Errorf("hub.dump has mode %04o, want 0640 (0666 less the umask 027)", mode)
	}
}

// A small export can go from queued to succeeded between two reports: its
// last frame is still the full bar, not the spinner of a job with no total.
func TestJobBarQueuedThenDone(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	c := &client{stderr: &out}
	bar := c.newJobBar()
	bar.update(progressJob("queued", 0, 0, "", 0))
	bar.update(progressJob("succeeded", 3421, 3421, "rows", 100))
	bar.stop(true)
	fs := frames(out.String())
	if len(fs) == 0 || !strings.HasPrefix(fs[len(fs)-1], "succeeded 3421/3421 rows 100% |") {
		t.Fatalf("frames %q", fs)
	}
}
