package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hubexport/hubexport/internal/seed"
	"github.com/hubexport/hubexport/internal/testenv"
)

const adminToken = "test-admin-token-0123456789"

// binary is the hubexport binary built once for these tests: crash tests
// need a real process to kill.
var binary string

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

// runTests builds the binary, runs the tests and removes the binary again:
// the removal is deferred here, where it runs, not in TestMain, which exits.
func runTests(m *testing.M) int {
	flag.Parse()
	if !testing.Short() {
		dir, err := os.MkdirTemp("", "hubexport-bin-")
		if err != nil {
			panic(err)
		}
		defer os.RemoveAll(dir)
		binary = filepath.Join(dir, "hubexport")
		args := []string{"build", "-o", binary}
		if raceEnabled {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build hubexport: %v\n%s", err, out)
			return 1
		}
	}
	return testenv.Run(m)
}

// seedNow is the fixed "now" of the seeded fixture, so its bytes never change.
var seedNow = time.Date(2026, 1, 29, 12, 0, 0, 0, time.UTC)

// hubDatabase returns a fresh copy of a small seeded hub database.
func hubDatabase(t *testing.T) string {
	t.Helper()
	return testenv.PostgresFrom(t, "hub-small", func(ctx context.Context, dsn string) error {
		pool, err := pgxpool.New(ctx, dsn)
		if err != nil {
			return err
		}
		defer pool.Close()
		_, err = seed.Run(ctx, pool, seed.Options{Rows: 2000, Seed: 7, Now: seedNow, Log: discardLog()})
		return err
	})
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// proc is a running hubexport process.
type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	logs bytes.Buffer
	done chan struct{}
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.Write(b)
}

func (p *proc) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// Kill stops the process with SIGKILL: no cleanup runs.
func (p *proc) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Stop sends SIGTERM and waits for a graceful exit.
func (p *proc) Stop(t *testing.T) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Errorf("hubexport did not stop within 30s after SIGTERM\n%s", p.Logs())
		p.Kill()
	}
}

func startProc(t *testing.T, env map[string]string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(binary, args...), done: make(chan struct{})}
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = p, p
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.Kill()
		}
		if strings.Contains(p.Logs(), "WARNING: DATA RACE") {
			t.Errorf("hubexport %s ran into a data race", strings.Join(args, " "))
		}
		if t.Failed() {
			t.Logf("hubexport %s logs:\n%s", strings.Join(args, " "), p.Logs())
		}
	})
	return p
}

// stack is a hub database, a Redis and a storage with hubexport processes
// over them.
type stack struct {
	t     *testing.T
	env   map[string]string
	base  string
	redis *testenv.Redis
	dsn   string
}

type stackOpt func(env map[string]string)

func withEnv(k, v string) stackOpt { return func(env map[string]string) { env[k] = v } }

func withS3(s *testenv.S3, endpoint string) stackOpt {
	return func(env map[string]string) {
		env["STORAGE_URL"] = "s3://" + s.Bucket + "/hx"
		env["S3_ENDPOINT"] = endpoint
		env["S3_PUBLIC_ENDPOINT"] = s.Endpoint
		env["S3_REGION"] = s.Region
		env["S3_ACCESS_KEY_ID"] = s.AccessKey
		env["S3_SECRET_ACCESS_KEY"] = s.SecretKey
		env["S3_FORCE_PATH_STYLE"] = "true"
	}
}

func newStack(t *testing.T, opts ...stackOpt) *stack {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end: needs PostgreSQL, Redis and S3")
	}
	s := &stack{t: t, redis: testenv.NewRedis(t), dsn: hubDatabase(t)}
	addr := freeAddr(t)
	s.base = "http://" + addr
	s.env = map[string]string{
		"DATABASE_URL":       s.dsn,
		"REDIS_URL":          s.redis.URL,
		"ADMIN_TOKEN":        adminToken,
		"HTTP_ADDR":          addr,
		"PUBLIC_URL":         s.base,
		"STORAGE_URL":        "file://" + t.TempDir(),
		"RETRY_BASE_DELAY":   "200ms",
		"RETRY_MAX_DELAY":    "1s",
		"RECONCILE_INTERVAL": "1s",
		"JOB_LEASE_TTL":      "3s",
		"SHUTDOWN_TIMEOUT":   "3s",
		"LOG_LEVEL":          "debug",
	}
	for _, o := range opts {
		o(s.env)
	}
	return s
}

// start runs a hubexport role over the stack; the API role is waited for.
func (s *stack) start(role string) *proc {
	s.t.Helper()
	p := startProc(s.t, s.env, role)
	if role == "serve" || role == "api" {
		deadline := time.Now().Add(20 * time.Second)
		for {
			resp, err := http.Get(s.base + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
			select {
			case <-p.done:
				s.t.Fatalf("hubexport %s exited at start:\n%s", role, p.Logs())
			default:
			}
			if time.Now().After(deadline) {
				s.t.Fatalf("hubexport %s not ready after 20s:\n%s", role, p.Logs())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return p
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("status %d, body %q is not JSON: %v", r.status, r.body, err)
	}
}

func (r response) errorCode(t *testing.T) (code string, fields map[string]string) {
	t.Helper()
	var e struct {
		Error struct {
			Code   string            `json:"code"`
			Fields map[string]string `json:"fields"`
		} `json:"error"`
	}
	r.json(t, &e)
	return e.Error.Code, e.Error.Fields
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (s *stack) do(method, path, token string, body any, headers ...string) response {
	s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// job is the part of the job object the tests read.
type job struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	Status    string    `json:"status"`
	Attempts  int       `json:"attempts"`
	CreatedAt time.Time `json:"created_at"`
	Progress  struct {
		Done    int64   `json:"done"`
		Total   int64   `json:"total"`
		Percent float64 `json:"percent"`
	} `json:"progress"`
	Result *struct {
		Filename    string `json:"filename"`
		ContentType string `json:"content_type"`
		SizeBytes   int64  `json:"size_bytes"`
		SHA256      string `json:"sha256"`
		Rows        int64  `json:"rows"`
	} `json:"result"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (s *stack) create(token string, body any, headers ...string) job {
	s.t.Helper()
	r := s.do("POST", "/api/v1/exports", token, body, headers...)
	if r.status != http.StatusAccepted {
		s.t.Fatalf("create: status %d: %s", r.status, r.body)
	}
	var j job
	r.json(s.t, &j)
	if loc := r.header.Get("Location"); loc != "/api/v1/exports/"+j.ID {
		s.t.Fatalf("Location %q for job %s", loc, j.ID)
	}
	return j
}

func (s *stack) get(token, id string) job {
	s.t.Helper()
	r := s.do("GET", "/api/v1/exports/"+id, token, nil)
	if r.status != 200 {
		s.t.Fatalf("get %s: status %d: %s", id, r.status, r.body)
	}
	var j job
	r.json(s.t, &j)
	return j
}

// wait polls job id until it has ended.
func (s *stack) wait(token, id string, timeout time.Duration) job {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		j := s.get(token, id)
		switch j.Status {
		case "succeeded", "failed", "canceled", "expired":
			return j
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("job %s still %s after %s", id, j.Status, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// download follows the job's download link and returns the file.
func (s *stack) download(token, id string) (body []byte, header http.Header, link string) {
	s.t.Helper()
	r := s.do("GET", "/api/v1/exports/"+id+"/download", token, nil)
	if r.status != http.StatusFound {
		s.t.Fatalf("download %s: status %d: %s", id, r.status, r.body)
	}
	link = r.header.Get("Location")
	resp, err := http.Get(link)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		s.t.Fatalf("GET download link: status %d: %s", resp.StatusCode, body)
	}
	return body, resp.Header, link
}

func (s *stack) pool() *pgxpool.Pool {
	s.t.Helper()
	pool, err := pgxpool.New(context.Background(), s.dsn)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(pool.Close)
	return pool
}

func (s *stack) exec(sql string, args ...any) {
	s.t.Helper()
	if _, err := s.pool().Exec(context.Background(), sql, args...); err != nil {
		s.t.Fatalf("%s: %v", sql, err)
	}
}
