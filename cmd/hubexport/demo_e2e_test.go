package main

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hubexport/hubexport/internal/seed"
)

// A newcomer's first minutes: `hubexport demo` comes up on its own PostgreSQL and Redis, the
// printed key signs in on the page, an export runs to 100 %, a printed session exports, and
// Ctrl-C leaves no process and no directory behind.
func TestDemo(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end: needs PostgreSQL, Redis and Chromium")
	}
	addr := freeAddr(t)
	base := "http://" + addr
	// Runs after the process is killed, should the test fail before Ctrl-C.
	var p *proc
	t.Cleanup(func() {
		if p != nil {
			leftovers, _ := filepath.Glob(filepath.Join(os.TempDir(), demoDirPrefix+strconv.Itoa(p.cmd.Process.Pid)+"-*"))
			for _, d := range leftovers {
				_ = os.RemoveAll(d)
			}
		}
	})
	p = startProc(t, nil, "demo", "--addr", addr, "--rows", "3000")
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(p.Logs(), "Ctrl-C stops everything") {
		select {
		case <-p.done:
			t.Fatalf("demo exited at start:\n%s", p.Logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo not up after 60s:\n%s", p.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	out := p.Logs()
	if !strings.Contains(out, "open "+base+"/ ") {
		t.Errorf("the demo does not print its URL %s:\n%s", base, out)
	}
	adminKey := regexp.MustCompile(`admin key: (\S+)`).FindStringSubmatch(out)
	userKey := regexp.MustCompile(`user key: +(\S+)`).FindStringSubmatch(out)
	session := regexp.MustCompile(`(?m)^    (sess_\w+)  requests `).FindStringSubmatch(out)
	dir := regexp.MustCompile(`files in (/\S+)`).FindStringSubmatch(out)
	if adminKey == nil || userKey == nil || session == nil || dir == nil {
		t.Fatalf("the demo's banner lacks the keys, a session or its directory:\n%s", out)
	}
	if userKey[1] != seed.UserKey {
		t.Errorf("user key %q", userKey[1])
	}
	if _, err := os.Stat(dir[1]); err != nil || !strings.HasPrefix(filepath.Base(dir[1]), demoDirPrefix) {
		t.Fatalf("demo directory %s: %v", dir[1], err)
	}

	b := newTab(t)
	b.signIn(base, adminKey[1])
	if who := b.text("#whoami"); !strings.Contains(who, seed.AdminUserName) {
		t.Errorf("whoami %q", who)
	}
	now := time.Now().UTC()
	b.do(
		chromedp.SetValue("#f-timezone", "UTC"),
		chromedp.SetValue("#f-start_time", now.AddDate(0, 0, -40).Format("2006-01-02T15:04")),
		chromedp.SetValue("#f-end_time", now.Add(time.Hour).Format("2006-01-02T15:04")),
		chromedp.Click("#create"),
	)
	b.waitFor(`document.querySelector('#jobs li.job') !== null`, 10*time.Second)
	card := `#jobs li.job[data-id="` + eval[string](b, `document.querySelector('#jobs li.job').dataset.id`) + `"]`
	b.waitFor(`(() => { const c = document.querySelector('`+card+`');
		return c.dataset.status === 'succeeded' && c.querySelector('.bar').getAttribute('aria-valuenow') === '100'; })()`, 30*time.Second)
	if got := b.text(card + " .percent"); got != "100%" {
		t.Errorf("percent %q", got)
	}
	shown := b.text(card + " .fact.rows dd")
	if rows, _ := strconv.Atoi(strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, shown)); rows < 2000 {
		t.Errorf("the demo's usage export shows %q rows", shown)
	}

	// The seeded session snapshots serve a session_request export.
	api := &stack{t: t, base: base}
	j := api.create(adminKey[1], map[string]any{"type": "session_request", "params": map[string]any{"session_id": session[1]}})
	if j = api.wait(adminKey[1], j.ID, 30*time.Second); j.Status != "succeeded" {
		t.Errorf("session_request of %s: %s %+v", session[1], j.Status, j.Error)
	}

	children := descendants(p.cmd.Process.Pid)
	var names []string
	for _, pid := range children {
		names = append(names, procName(pid))
	}
	if !containsName(names, "postgres") || !containsName(names, "redis-server") {
		t.Fatalf("the demo's child processes are %v; want postgres and redis-server", names)
	}

	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("demo still running 30s after Ctrl-C:\n%s", p.Logs())
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("demo exit code %d after Ctrl-C", code)
	}
	deadline = time.Now().Add(5 * time.Second)
	for _, pid := range children {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if alive(pid) {
			t.Errorf("process %d (%s) survived the demo", pid, procName(pid))
		}
	}
	if _, err := os.Stat(dir[1]); !os.IsNotExist(err) {
		t.Errorf("demo directory %s still there after Ctrl-C: %v", dir[1], err)
	}
}

// descendants lists the processes below pid, read from /proc.
func descendants(pid int) []int {
	parent := map[int]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
		if f := strings.Fields(rest); len(f) > 1 {
			parent[n], _ = strconv.Atoi(f[1])
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for c, pp := range parent {
			if pp == p {
				out = append(out, c)
				queue = append(queue, c)
			}
		}
	}
	return out
}

func procName(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return "gone"
	}
	return strings.TrimSpace(string(b))
}

func containsName(names []string, want string) bool {
	for _, n := range names {
		if n == want {
			return true
		}
	}
	return false
}

// alive tells whether pid runs; a zombie counts as gone.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
	return !strings.HasPrefix(strings.TrimSpace(rest), "Z")
}

// Without the servers' binaries the demo says, in one message, what to install.
func TestDemoNamesMissingPackages(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("needs the built binary")
	}
	p := startProc(t, map[string]string{"PATH": t.TempDir()}, "demo", "--addr", freeAddr(t))
	<-p.done
	out := p.Logs()
	if code := p.cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(out, "redis-server (looked for in PATH)") ||
		!strings.Contains(out, "apt-get install postgresql redis-server") {
		t.Errorf("demo without redis-server: exit %d\n%s", code, out)
	}
	if strings.Contains(out, "level=") || strings.Count(out, "\n") > 3 {
		t.Errorf("more than one message:\n%s", out)
	}
}

// An address in use is reported before anything starts.
func TestDemoAddressInUse(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("needs the built binary")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := startProc(t, nil, "demo", "--addr", ln.Addr().String())
	<-p.done
	out := p.Logs()
	if code := p.cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(out, "cannot listen on "+ln.Addr().String()) ||
		!strings.Contains(out, "--addr") {
		t.Errorf("demo on a taken address: exit %d\n%s", code, out)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(os.TempDir(), demoDirPrefix+strconv.Itoa(p.cmd.Process.Pid)+"-*")); len(leftovers) > 0 {
		t.Errorf("left %v behind", leftovers)
	}
}
