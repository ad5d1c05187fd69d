package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
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
	"github.com/hubexport/hubexport/web/client"
)

const adminToken = "test-admin-token-0123456789"

// binary is hubexport built once: the client is tested against a real
// serve, as a program using it would meet it.
var binary string

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	flag.Parse()
	if !testing.Short() {
		dir, err := os.MkdirTemp("", "hubexport-client-bin-")
		if err != nil {
			panic(err)
		}
		defer os.RemoveAll(dir)
		binary = filepath.Join(dir, "hubexport")
		out, err := exec.Command("go", "build", "-o", binary, "../../cmd/hubexport").CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build hubexport: %v\n%s", err, out)
			return 1
		}
	}
	return testenv.Run(m)
}

// serveHub starts hubexport serve over a fresh seeded hub database, a Redis
// and local file storage, and returns its base URL.
func serveHub(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs PostgreSQL and Redis")
	}
	dsn := testenv.PostgresFrom(t, "client-hub", func(ctx context.Context, dsn string) error {
		pool, err := pgxpool.New(ctx, dsn)
		if err != nil {
			return err
		}
		defer pool.Close()
		_, err = seed.Run(ctx, pool, seed.Options{Rows: 500, Seed: 7, Now: time.Date(2026, 1, 29, 12, 0, 0, 0, time.UTC),
			Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		return err
	})
	rdb := testenv.NewRedis(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	base := "http://" + addr

	cmd := exec.Command(binary, "serve")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"DATABASE_URL=" + dsn, "REDIS_URL=" + rdb.URL, "ADMIN_TOKEN=" + adminToken,
		"HTTP_ADDR=" + addr, "PUBLIC_URL=" + base, "STORAGE_URL=file://" + t.TempDir(),
		"RECONCILE_INTERVAL=1s", "SHUTDOWN_TIMEOUT=3s"}
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("hubexport serve logs:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		select {
		case <-done:
			t.Fatalf("hubexport serve exited at start:\n%s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("hubexport serve not ready after 20s:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// finishedExport creates a small usage-logs CSV and waits for it.
func finishedExport(t *testing.T, c *client.Client, key string) (*client.Job, []*client.Job) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	job, err := c.CreateExport(ctx, client.ExportRequest{Type: "usage_logs", Format: "csv", IdempotencyKey: key,
		Params: map[string]any{"header_lang": "en"}})
	if err != nil {
		t.Fatal(err)
	}
	if job.ID == "" || job.Type != "usage_logs" || job.Format != "csv" || job.Ended() {
		t.Fatalf("created job: %+v", job)
	}
	var seen []*client.Job
	final, err := c.WaitJob(ctx, job, func(j *client.Job) { seen = append(seen, j) })
	if err != nil {
		t.Fatal(err)
	}
	if final.Status != client.StatusSucceeded || final.Result == nil || final.Result.SHA256 == "" {
		t.Fatalf("job ended %s: %+v %+v", final.Status, final.Result, final.Error)
	}
	return final, seen
}

// TestExportThroughTheClient: a job is created, followed to its end over
// the event stream, read back, and its file downloaded with the size and
// SHA-256 the job states, progress counting up to the size.
func TestExportThroughTheClient(t *testing.T) {
	t.Parallel()
	c := &client.Client{BaseURL: serveHub(t), Token: adminToken}
	ctx := context.Background()

	job, seen := finishedExport(t, c, "client-test-1")
	if len(seen) == 0 || seen[len(seen)-1].Status != client.StatusSucceeded {
		t.Fatalf("updates seen: %d, the last not the succeeded job", len(seen))
	}
	for _, j := range seen {
		if j.ID != job.ID || len(j.Raw) == 0 {
			t.Errorf("update %+v", j)
		}
	}

	again, err := c.Job(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if again.Status != client.StatusSucceeded || again.Result == nil || again.Result.SHA256 != job.Result.SHA256 ||
		again.CreatedAt.IsZero() || again.FinishedAt == nil || again.UserID != -1 {
		t.Errorf("read back: %+v", again)
	}

	var file bytes.Buffer
	var progress []int64
	if err := c.Download(ctx, job, &file, func(n int64) { progress = append(progress, n) }); err != nil {
		t.Fatal(err)
	}
	if int64(file.Len()) != job.Result.SizeBytes || hexSum(file.Bytes()) != job.Result.SHA256 {
		t.Errorf("downloaded %d bytes with SHA-256 %s, the job says %d and %s", file.Len(), hexSum(file.Bytes()), job.Result.SizeBytes, job.Result.SHA256)
	}
	if header, _, _ := bytes.Cut(file.Bytes(), []byte("\n")); bytes.Count(header, []byte(",")) < 3 {
		t.Errorf("not a CSV with a header: %.200q", file.Bytes())
	}
	if len(progress) < 2 || progress[0] != 0 || progress[len(progress)-1] != job.Result.SizeBytes {
		t.Errorf("progress reports %v, want 0 first and %d last", progress, job.Result.SizeBytes)
	}

	// The same Idempotency-Key gives the same job, not a second one.
	twin, err := c.CreateExport(ctx, client.ExportRequest{Type: "usage_logs", Format: "csv", IdempotencyKey: "client-test-1",
		Params: map[string]any{"header_lang": "en"}})
	if err != nil {
		t.Fatal(err)
	}
	if twin.ID != job.ID {
		t.Errorf("the same idempotency key made job %s after %s", twin.ID, job.ID)
	}

	// A file that is not what the job says is refused, with what came.
	forged := *job
	forgedResult := *job.Result
	forgedResult.SHA256 = strings.Repeat("0", 64)
	forged.Result = &forgedResult
	err = c.Download(ctx, &forged, io.Discard, nil)
	var ce *client.ChecksumError
	if !errors.As(err, &ce) || ce.Size != job.Result.SizeBytes || ce.SHA256 != job.Result.SHA256 || ce.WantSHA != forgedResult.SHA256 {
		t.Errorf("download against a wrong checksum: %v", err)
	}
}

// TestAPIErrors: refusals come back as *APIError with the API's status and
// code.
func TestAPIErrors(t *testing.T) {
	t.Parallel()
	base := serveHub(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		c      *client.Client
		call   func(c *client.Client) error
		status int
		code   string
	}{
		{"missing job", &client.Client{BaseURL: base, Token: adminToken},
			func(c *client.Client) error { _, err := c.Job(ctx, "exp_01KAXRR7Q9G7M1V4J3Z6TQ8W5N"); return err }, 404, "not_found"},
		{"wrong token", &client.Client{BaseURL: base, Token: "nope"},
			func(c *client.Client) error { _, err := c.Job(ctx, "exp_01KAXRR7Q9G7M1V4J3Z6TQ8W5N"); return err }, 401, "unauthenticated"},
		{"unknown type", &client.Client{BaseURL: base + "/", Token: adminToken},
			func(c *client.Client) error {
				_, err := c.CreateExport(ctx, client.ExportRequest{Type: "no_such_type"})
				return err
			}, 400, ""},
		{"missing schedule", &client.Client{BaseURL: base, Token: adminToken},
			func(c *client.Client) error { return c.DeleteSchedule(ctx, "sch_01KAXRR7Q9G7M1V4J3Z6TQ8W5N") }, 404, "schedule_not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(tc.c)
			var ae *client.APIError
			if !errors.As(err, &ae) || ae.Status != tc.status || (tc.code != "" && ae.Code != tc.code) || ae.Message == "" {
				t.Fatalf("got %v, want an APIError %d %s", err, tc.status, tc.code)
			}
			if !strings.HasSuffix(ae.Error(), fmt.Sprintf("(%s, HTTP %d)", ae.Code, ae.Status)) {
				t.Errorf("message %q", ae.Error())
			}
		})
	}
}

// TestWaitJobPollsWithoutAStream: behind a proxy that refuses event
// streams (503), WaitJob still follows the job to its end by polling.
func TestWaitJobPollsWithoutAStream(t *testing.T) {
	t.Parallel()
	target, err := url.Parse(serveHub(t))
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	var streams, reads int
	var mu sync.Mutex
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if strings.HasSuffix(r.URL.Path, "/events") {
			streams++
			http.Error(w, "no streams here", http.StatusServiceUnavailable)
			return
		}
		if r.Method == http.MethodGet {
			reads++
		}
		rp.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	c := &client.Client{BaseURL: proxy.URL, Token: adminToken}
	job, seen := finishedExport(t, c, "")
	mu.Lock()
	defer mu.Unlock()
	if streams != 1 || reads == 0 || len(seen) != reads {
		t.Errorf("%d streams asked for, %d reads, %d updates", streams, reads, len(seen))
	}
	if seen[len(seen)-1].ID != job.ID {
		t.Errorf("last update %+v", seen[len(seen)-1])
	}
}

// TestUploadDump: a dump is declared and sent; progress counts to its size.
func TestUploadDump(t *testing.T) {
	t.Parallel()
	c := &client.Client{BaseURL: serveHub(t), Token: adminToken}
	dump := bytes.Repeat([]byte("PGDMP not really "), 4096)
	var progress []int64
	id, err := c.UploadDump(context.Background(), "hub.dump", bytes.NewReader(dump), int64(len(dump)), hexSum(dump),
		func(n int64) { progress = append(progress, n) })
	if err != nil {
		t.Fatal(err)
	}
	if id == "" || len(progress) < 2 || progress[0] != 0 || progress[len(progress)-1] != int64(len(dump)) {
		t.Errorf("upload %q, progress %v", id, progress)
	}
}

// TestSchedules: create, list, pause and delete, as the schedule commands
// do.
func TestSchedules(t *testing.T) {
	t.Parallel()
	c := &client.Client{BaseURL: serveHub(t), Token: adminToken}
	ctx := context.Background()
	s, err := c.CreateSchedule(ctx, map[string]any{"name": "nightly", "cron": "0 3 * * *"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "nightly" || s.Cron != "0 3 * * *" || s.Timezone != "UTC" || !s.Enabled || s.NextRunAt == nil || len(s.Raw) == 0 {
		t.Errorf("created %+v", s)
	}
	paused, err := c.UpdateSchedule(ctx, s.ID, map[string]any{"enabled": false})
	if err != nil {
		t.Fatal(err)
	}
	if paused.ID != s.ID || paused.Enabled {
		t.Errorf("paused %+v", paused)
	}
	list, err := c.Schedules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != s.ID || list[0].Enabled {
		t.Errorf("listed %+v", list)
	}
	if err := c.DeleteSchedule(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	if list, err := c.Schedules(ctx); err != nil || len(list) != 0 {
		t.Errorf("after delete: %v %+v", err, list)
	}
}
