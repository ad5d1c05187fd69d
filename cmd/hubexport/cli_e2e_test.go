package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// cliResult is what one run of the export command left behind.
type cliResult struct {
	code           int
	stdout, stderr string
}

// cli runs "hubexport export args..." in dir, with only PATH, HOME and env
// set: the client must need none of the server's configuration.
func cli(t *testing.T, dir string, env map[string]string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"export"}, args...)...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := cliResult{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("run hubexport export: %v", err)
	}
	return r
}

// filesIn lists the names in dir, hidden ones included.
func filesIn(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

const endpoint1Lines = "[10:30:00] OK 200 45ms \n[10:29:00] FAIL 503 1.13s Service Unavailable\n[10:28:00] FAIL - - connect timeout\n[10:27:00] OK 204 1.00s "

func TestCLIExport(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	probeFixture(s)
	s.start("serve")
	filename := "probe-logs-" + time.Now().UTC().Format("2006-01-02") + ".txt"

	t.Run("wait, download and verify into the job's file name", func(t *testing.T) {
		dir := t.TempDir()
		r := cli(t, dir, nil, "probe-logs", "--server", s.base, "--token", adminToken, "--endpoint-id", "1", "--wait")
		if r.code != 0 {
			t.Fatalf("exit %d\nstderr: %s", r.code, r.stderr)
		}
		b, err := os.ReadFile(filepath.Join(dir, filename))
		if err != nil || string(b) != endpoint1Lines {
			t.Fatalf("file %q (%v), want %q", b, err, endpoint1Lines)
		}
		if names := filesIn(t, dir); len(names) != 1 {
			t.Errorf("files left: %v", names)
		}
		if !strings.Contains(r.stderr, "saved "+filename) || !strings.Contains(r.stderr, "verified") || !strings.Contains(r.stderr, "100%") {
			t.Errorf("stderr does not show the bar and the check:\n%s", r.stderr)
		}
		for _, f := range frames(r.stderr) {
			if strings.HasPrefix(f, "succeeded") && !strings.Contains(f, "100%") {
				t.Errorf("the bar showed the succeeded job short of 100 %%: %q", f)
			}
		}
		if r.stdout != "" {
			t.Errorf("stdout %q", r.stdout)
		}
	})

	t.Run("token and server from the environment, -o and params", func(t *testing.T) {
		dir := t.TempDir()
		env := map[string]string{"HUBEXPORT_TOKEN": adminToken, "HUBEXPORT_SERVER": s.base}
		r := cli(t, dir, env, "probe-logs", "--result", "fail", "--param", "endpoint_id=1", "--param", `timezone="Asia/Shanghai"`, "--wait", "-o", "sub.txt")
		if r.code != 0 {
			t.Fatalf("exit %d\nstderr: %s", r.code, r.stderr)
		}
		want := "[18:29:00] FAIL 503 1.13s Service Unavailable\n[18:28:00] FAIL - - connect timeout"
		if b, _ := os.ReadFile(filepath.Join(dir, "sub.txt")); string(b) != want {
			t.Fatalf("file %q, want %q", b, want)
		}
	})

	t.Run("-o - writes the file to stdout", func(t *testing.T) {
		r := cli(t, t.TempDir(), nil, "probe-logs", "--server", s.base, "--token", adminToken, "--endpoint-id", "1", "--wait", "-o", "-")
		if r.code != 0 || r.stdout != endpoint1Lines {
			t.Fatalf("exit %d, stdout %q\nstderr: %s", r.code, r.stdout, r.stderr)
		}
	})

	// A device or a pipe is written to, never replaced: renaming a file
	// over -o /dev/null would swap the machine's null device for a file.
	t.Run("-o a named pipe writes into it and leaves it a pipe", func(t *testing.T) {
		dir := t.TempDir()
		fifo := filepath.Join(dir, "pipe")
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		got := make(chan []byte, 1)
		go func() {
			f, err := os.Open(fifo) // blocks until the CLI opens it for writing
			if err != nil {
				got <- nil
				return
			}
			defer f.Close()
			b, _ := io.ReadAll(f)
			got <- b
		}()
		r := cli(t, dir, nil, "probe-logs", "--server", s.base, "--token", adminToken, "--endpoint-id", "1", "--wait", "-o", fifo)
		if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
			t.Fatalf("-o %s replaced the pipe: %v %v\nstderr: %s", fifo, fi.Mode(), err, r.stderr)
		}
		if r.code != 0 {
			t.Fatalf("exit %d\nstderr: %s", r.code, r.stderr)
		}
		select {
		case b := <-got:
			if string(b) != endpoint1Lines {
				t.Fatalf("the pipe got %q", b)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("nothing was written into the pipe")
		}
		if names := filesIn(t, dir); len(names) != 1 {
			t.Fatalf("files left beside the pipe: %v", names)
		}
	})

	t.Run("--json without --wait prints the new job", func(t *testing.T) {
		r := cli(t, t.TempDir(), nil, "probe-logs", "--server", s.base, "--token", adminToken, "--json")
		var j job
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &j) != nil || !strings.HasPrefix(j.ID, "exp_") || j.Type != "probe_logs" {
			t.Fatalf("exit %d, stdout %q\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		if r.stderr != "" {
			t.Errorf("stderr %q", r.stderr)
		}
		s.wait(adminToken, j.ID, 30*time.Second)
	})

	t.Run("--json --wait prints the final job and saves the file", func(t *testing.T) {
		dir := t.TempDir()
		r := cli(t, dir, nil, "probe-logs", "--server", s.base, "--token", adminToken, "--endpoint-id", "1", "--wait", "--json")
		var j job
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &j) != nil {
			t.Fatalf("exit %d, stdout %q\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		if j.Status != "succeeded" || j.Result == nil || j.Result.Rows != 4 || j.Result.Filename != filename {
			t.Fatalf("job %+v", j)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, filename)); string(b) != endpoint1Lines {
			t.Fatalf("file %q", b)
		}
		if r.stderr != "" {
			t.Errorf("--json wrote to stderr: %q", r.stderr)
		}
	})

	t.Run("without --wait prints the job id", func(t *testing.T) {
		r := cli(t, t.TempDir(), nil, "probe-logs", "--server", s.base, "--token", adminToken)
		id := strings.TrimSpace(r.stdout)
		if r.code != 0 || !strings.HasPrefix(id, "exp_") || strings.Contains(id, "\n") {
			t.Fatalf("exit %d, stdout %q\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		if j := s.wait(adminToken, id, 30*time.Second); j.Status != "succeeded" {
			t.Fatalf("job %s", j.Status)
		}
	})

	t.Run("the same idempotency key twice is one job", func(t *testing.T) {
		args := []string{"probe-logs", "--server", s.base, "--token", adminToken, "--idempotency-key", "cli-test-1"}
		a, b := cli(t, t.TempDir(), nil, args...), cli(t, t.TempDir(), nil, args...)
		if a.code != 0 || b.code != 0 || a.stdout != b.stdout {
			t.Fatalf("two runs: %q %q\n%s%s", a.stdout, b.stdout, a.stderr, b.stderr)
		}
		s.wait(adminToken, strings.TrimSpace(a.stdout), 30*time.Second)
	})

	t.Run("no event stream: polling", func(t *testing.T) {
		p := newMeddler(t, s.base)
		p.noEvents.Store(true)
		dir := t.TempDir()
		r := cli(t, dir, nil, "probe-logs", "--server", p.URL, "--token", adminToken, "--endpoint-id", "1", "--wait", "-o", "out.txt")
		if r.code != 0 {
			t.Fatalf("exit %d\nstderr: %s", r.code, r.stderr)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "out.txt")); string(b) != endpoint1Lines {
			t.Fatalf("file %q", b)
		}
		if p.events.Load() == 0 {
			t.Fatal("the client never tried the event stream")
		}
	})

	t.Run("a file that does not match its SHA-256 is not saved", func(t *testing.T) {
		p := newMeddler(t, s.base)
		p.tamper.Store(true)
		dir := t.TempDir()
		r := cli(t, dir, nil, "probe-logs", "--server", p.URL, "--token", adminToken, "--endpoint-id", "1", "--wait", "-o", "out.txt")
		if r.code != 1 || !strings.Contains(r.stderr, "does not match") || !strings.Contains(r.stderr, "nothing was saved") {
			t.Fatalf("exit %d\nstderr: %s", r.code, r.stderr)
		}
		if names := filesIn(t, dir); len(names) != 0 {
			t.Fatalf("files left: %v", names)
		}
	})
}

func TestCLIExportFailures(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	probeFixture(s)
	s.start("serve")
	dir := t.TempDir()

	t.Run("the API refuses a param", func(t *testing.T) {
		r := cli(t, dir, nil, "probe-logs", "--server", s.base, "--token", adminToken, "--max-lines", "0", "--wait")
		if r.code != 1 {
			t.Fatalf("exit %d, want 1\nstderr: %s", r.code, r.stderr)
		}
		want := "hubexport export: create the export: params.max_lines: must be between 1 and 100000 (invalid_request, HTTP 400)\n"
		if r.stderr != want {
			t.Fatalf("stderr %q\nwant   %q", r.stderr, want)
		}
	})

	t.Run("a bad token", func(t *testing.T) {
		r := cli(t, dir, nil, "usage-logs", "--server", s.base, "--token", "sk-nope")
		if r.code != 1 || !strings.Contains(r.stderr, "(unauthenticated, HTTP 401)") {
			t.Fatalf("exit %d\nstderr: %s", r.code, r.stderr)
		}
	})

	t.Run("a job that fails", func(t *testing.T) {
		s.exec(`ALTER TABLE provider_endpoint_probe_logs RENAME TO provider_endpoint_probe_logs_gone`)
		r := cli(t, dir, nil, "probe-logs", "--server", s.base, "--token", adminToken, "--wait")
		s.exec(`ALTER TABLE provider_endpoint_probe_logs_gone RENAME TO provider_endpoint_probe_logs`)
		if r.code != 1 {
			t.Fatalf("exit %d, want 1\nstderr: %s", r.code, r.stderr)
		}
		last := strings.TrimSpace(r.stderr[strings.LastIndex(strings.TrimSpace(r.stderr), "\n")+1:])
		if !strings.HasPrefix(last, "hubexport export: job exp_") || !strings.Contains(last, " failed: ") ||
			!strings.Contains(last, "provider_endpoint_probe_logs") || !strings.HasSuffix(last, "(export_failed)") {
			t.Fatalf("last line %q\nstderr: %s", last, r.stderr)
		}
		if names := filesIn(t, dir); len(names) != 0 {
			t.Fatalf("files left: %v", names)
		}
	})
}

// The command line is checked before anything is sent: usage errors exit 2.
func TestExportCommandLine(t *testing.T) {
	t.Parallel()
	env := func(kv ...string) func(string) (string, bool) {
		return func(k string) (string, bool) {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1], true
				}
			}
			return "", false
		}
	}
	cases := []struct {
		args []string
		env  []string
		code int
		want string
	}{
		{[]string{}, nil, 2, "name the export type first"},
		{[]string{"--help"}, nil, 0, "usage: hubexport export TYPE"},
		{[]string{"probe-logs", "-h"}, nil, 0, "usage: hubexport export TYPE"},
		{[]string{"Probe Logs"}, nil, 2, "unknown export type"},
		{[]string{"probe-logs"}, nil, 2, "no token"},
		{[]string{"probe-logs", "--mode", "full"}, []string{"HUBEXPORT_TOKEN", "t"}, 2, "flag provided but not defined: -mode"},
		{[]string{"probe-logs", "--max-lines", "many"}, []string{"HUBEXPORT_TOKEN", "t"}, 2, "not an integer"},
		{[]string{"probe-logs", "-o", "x.txt"}, []string{"HUBEXPORT_TOKEN", "t"}, 2, "-o needs --wait"},
		{[]string{"probe-logs", "--wait", "--json", "-o", "-"}, []string{"HUBEXPORT_TOKEN", "t"}, 2, "choose one"},
		{[]string{"probe-logs", "--param", "novalue"}, []string{"HUBEXPORT_TOKEN", "t"}, 2, "want KEY=VALUE"},
		{[]string{"probe-logs", "stray"}, []string{"HUBEXPORT_TOKEN", "t"}, 2, `unexpected argument "stray"`},
		{[]string{"backup"}, []string{"HUBEXPORT_TOKEN", "t", "HUBEXPORT_SERVER", "ftp://x"}, 2, "want the API's http(s) URL"},
		// Nothing listens there: a network failure is exit 1, not a usage error.
		{[]string{"session", "--session-id", "s", "--sequence", "3"}, []string{"HUBEXPORT_TOKEN", "t", "HUBEXPORT_SERVER", "http://127.0.0.1:1"}, 1, "create the export"},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		code := run(append([]string{"export"}, c.args...), env(c.env...), &out, &errb)
		if code != c.code || !strings.Contains(out.String()+errb.String(), c.want) {
			t.Errorf("export %q: exit %d, want %d with %q\nstdout: %s\nstderr: %s", c.args, code, c.code, c.want, &out, &errb)
		}
	}
}

// The request body the flags make.
func TestExportFlagsMakeParams(t *testing.T) {
	t.Parallel()
	lookup := func(k string) (string, bool) {
		if k == "HUBEXPORT_TOKEN" {
			return "t", true
		}
		return "", false
	}
	o, err := parseExportArgs([]string{"usage-logs", "--format", "csv.gz", "--start", "2026-01-01T00:00:00Z", "--end", "1769682600000",
		"--user-id", "7", "--exclude-200", "--header-lang", "en", "--param", `extra={"a":[1]}`, "--param", "model=claude"}, lookup, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(o.params)
	want := `{"end_time":1769682600000,"exclude_status_200":true,"extra":{"a":[1]},"header_lang":"en","model":"claude","start_time":"2026-01-01T00:00:00Z","user_id":7}`
	if o.apiType != "usage_logs" || o.format != "csv.gz" || string(got) != want {
		t.Fatalf("type %s format %s params %s\nwant %s", o.apiType, o.format, got, want)
	}
	if o, err = parseExportArgs([]string{"session", "--session-id", "abc", "--sequence", "2", "--view", "before", "--whole-session=false"}, lookup, io.Discard); err != nil {
		t.Fatal(err)
	}
	if got, _ := json.Marshal(o.params); o.apiType != "session_request" || string(got) != `{"sequence":2,"session_id":"abc","view":"before","whole_session":false}` {
		t.Fatalf("session: %s %s", o.apiType, got)
	}
	if o, err = parseExportArgs([]string{"backup", "--mode", "exclude_logs"}, lookup, io.Discard); err != nil || o.apiType != "database_backup" || o.params["mode"] != "exclude_logs" {
		t.Fatalf("backup: %+v %v", o, err)
	}
	o, err = parseExportArgs([]string{"backup", "--encrypt", "--age-recipient", "age1aaa", "--age-recipient", "ssh-ed25519 AAAA x"}, lookup, io.Discard)
	if got, _ := json.Marshal(o.params); err != nil || string(got) != `{"age_recipients":["age1aaa","ssh-ed25519 AAAA x"],"encrypt":true}` {
		t.Fatalf("encrypted backup: %s %v", got, err)
	}
	if o, err = parseExportArgs([]string{"restore", "--backup-job-id", "exp_1", "--dry-run"}, lookup, io.Discard); err != nil {
		t.Fatal(err)
	}
	if got, _ := json.Marshal(o.params); o.apiType != "database_restore" || string(got) != `{"backup_job_id":"exp_1","dry_run":true}` {
		t.Fatalf("restore: %s %s", o.apiType, got)
	}
	if o, err = parseExportArgs([]string{"verify", "--backup-job-id", "exp_1", "--check", "SELECT true", "--check", "SELECT 1 = 1"}, lookup, io.Discard); err != nil {
		t.Fatal(err)
	}
	if got, _ := json.Marshal(o.params); o.apiType != "backup_verify" || string(got) != `{"backup_job_id":"exp_1","checks":["SELECT true","SELECT 1 = 1"]}` {
		t.Fatalf("verify: %s %s", o.apiType, got)
	}
}

// meddler is a proxy in front of the API that can refuse event streams and
// corrupt downloaded files. It rewrites download links to pass through it.
type meddler struct {
	*httptest.Server
	noEvents, tamper atomic.Bool // set by the test while the proxy serves
	events           atomic.Int32
}

func newMeddler(t *testing.T, backend string) *meddler {
	t.Helper()
	u, err := url.Parse(backend)
	if err != nil {
		t.Fatal(err)
	}
	m := &meddler{}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(resp *http.Response) error {
		path := resp.Request.URL.Path
		var rewrite func([]byte) []byte
		switch {
		case strings.HasSuffix(path, "/download"):
			rewrite = func(b []byte) []byte { return bytes.ReplaceAll(b, []byte(backend), []byte(m.URL)) }
		case strings.HasPrefix(path, "/api/v1/files/") && m.tamper.Load():
			rewrite = func(b []byte) []byte {
				if len(b) > 0 {
					b[len(b)/2] ^= 0x20
				}
				return b
			}
		default:
			return nil
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		b = rewrite(b)
		resp.Body = io.NopCloser(bytes.NewReader(b))
		resp.ContentLength = int64(len(b))
		resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
		return nil
	}
	// Unstarted until m.Server is set: the proxy's handlers read m.URL.
	m.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/events") {
			m.events.Add(1)
			if m.noEvents.Load() {
				http.Error(w, "event streams are not proxied here", http.StatusBadGateway)
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	m.Start()
	t.Cleanup(m.Close)
	return m
}
