package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hubexport/hubexport/internal/export"
	"github.com/hubexport/hubexport/internal/hub"
	"github.com/hubexport/hubexport/internal/testenv"
)

// BenchmarkUsageLogExport measures whole usage_logs exports of a seeded hub, the way an
// operator runs them: `hubexport seed --rows N` into a scratch database, then `hubexport api`
// and a fresh `hubexport worker` process per case, one export each. It reports the export's wall
// time (the job's started_at to finished_at), rows per second and the worker's peak RSS (VmHWM
// from /proc), and, beside them, psql's \copy of the very query the export runs to a CSV file.
// Each export case also reports its time as a ratio to the psql case run last before it. The
// worker's TMPDIR is a file, where nothing can be created: an export that needed a temporary
// file would fail.
//
// It is a benchmark, not a test: run it alone, once per size.
//
//	USAGE_BENCH_ROWS=1000000,5000000 go test ./cmd/hubexport -run '^$' \
//	    -bench UsageLogExport -benchtime 1x -timeout 3h
//
// USAGE_BENCH_CASES (default "psql,csv-local,csv-s3,xlsx-local") picks cases: psql, or
// FORMAT-WHERE with FORMAT one of csv, xlsx, jsonl, parquet and WHERE local or s3. A case named
// twice runs twice, so alternating formats gives medians that share the machine's weather:
//
//	USAGE_BENCH_CASES=psql,csv-local,parquet-local,csv-local,parquet-local,csv-local,parquet-local \
//	USAGE_BENCH_ROWS=1000000 go test ./cmd/hubexport -run '^$' -bench UsageLogExport -benchtime 1x -timeout 3h
func BenchmarkUsageLogExport(b *testing.B) {
	sizes := strings.Split(envOr("USAGE_BENCH_ROWS", "1000000"), ",")
	cases := strings.Split(envOr("USAGE_BENCH_CASES", "psql,csv-local,csv-s3,xlsx-local"), ",")
	for _, size := range sizes {
		n, err := strconv.Atoi(strings.TrimSpace(size))
		if err != nil {
			b.Fatalf("USAGE_BENCH_ROWS: %q is not a number", size)
		}
		b.Run("rows="+strconv.Itoa(n), func(b *testing.B) {
			bench := newUsageBench(b, n)
			for _, c := range cases {
				b.Run(c, func(b *testing.B) {
					for range b.N {
						bench.run(b, c)
					}
				})
			}
		})
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

type usageBench struct {
	dsn    string
	rows   int
	copied int64         // rows psql copied, once it ran
	psql   time.Duration // psql's time, once it ran
	query  string
	redis  *testenv.Redis
	s3     *testenv.S3
}

func newUsageBench(b *testing.B, rows int) *usageBench {
	b.Helper()
	if binary == "" {
		b.Skip("needs the hubexport binary (not built under -short)")
	}
	u := &usageBench{dsn: testenv.Postgres(b), rows: rows, redis: testenv.NewRedis(b), s3: testenv.NewS3(b)}
	start := time.Now()
	cmd := exec.Command(binary, "seed", "--rows", strconv.Itoa(rows), "--seed", "1", "--now", "2026-01-29T12:00:00Z")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "DATABASE_URL=" + u.dsn, "REDIS_URL=" + u.redis.URL, "LOG_LEVEL=warn"}
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("hubexport seed: %v\n%s", err, out)
	} else {
		b.Logf("%s(%s)", out, time.Since(start).Round(time.Second))
	}
	pool, err := pgxpool.New(context.Background(), u.dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(context.Background(), "VACUUM ANALYZE"); err != nil {
		b.Fatal(err)
	}
	q, args, err := hub.New(pool).UsageLogSQL(context.Background(), export.UsageLogParams{HeaderLang: "zh", Timezone: "UTC"})
	if err != nil || len(args) != 0 {
		b.Fatalf("usage query: %v (args %v)", err, args)
	}
	// psql's \copy takes the query on one line.
	u.query = strings.Join(strings.Fields(q), " ")
	return u
}

func (u *usageBench) run(b *testing.B, c string) {
	switch c {
	case "psql":
		start := time.Now()
		file := filepath.Join(b.TempDir(), "usage.csv")
		cmd := exec.Command("psql", u.dsn, "-X", "-v", "ON_ERROR_STOP=1", "-c", `\copy (`+u.query+`) TO '`+file+`' CSV HEADER`)
		out, err := cmd.CombinedOutput()
		wall := time.Since(start)
		if err != nil {
			b.Fatalf("psql: %v\n%s", err, out)
		}
		u.psql = wall
		if err := os.Remove(file); err != nil {
			b.Fatal(err)
		}
		n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(string(out), "COPY ")), 10, 64)
		if err != nil {
			b.Fatalf("psql said %q", out)
		}
		u.copied = n
		u.report(b, c, wall, n, 0, 0)
	case "csv-local", "csv-s3", "xlsx-local", "jsonl-local", "parquet-local", "parquet-s3":
		format, where, _ := strings.Cut(c, "-")
		u.export(b, c, format, where)
	default:
		b.Fatalf("unknown case %q", c)
	}
}

// export runs one export on a fresh worker process and reports it.
func (u *usageBench) export(b *testing.B, name, format, where string) {
	addr := benchAddr(b)
	// Not b.TempDir(): a repeated case's name has a '#', which a file:// URL cannot hold.
	dir, err := os.MkdirTemp("", "hubexport-bench-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	env := map[string]string{
		"DATABASE_URL": u.dsn, "REDIS_URL": u.redis.URL, "ADMIN_TOKEN": adminToken,
		"HTTP_ADDR": addr, "PUBLIC_URL": "http://" + addr, "STORAGE_URL": "file://" + dir,
		"LOG_LEVEL": "warn", "WORKER_CONCURRENCY": "1",
	}
	if where == "s3" {
		env["STORAGE_URL"] = "s3://" + u.s3.Bucket + "/bench"
		env["S3_ENDPOINT"], env["S3_PUBLIC_ENDPOINT"] = u.s3.Endpoint, u.s3.Endpoint
		env["S3_REGION"], env["S3_ACCESS_KEY_ID"], env["S3_SECRET_ACCESS_KEY"] = u.s3.Region, u.s3.AccessKey, u.s3.SecretKey
		env["S3_FORCE_PATH_STYLE"] = "true"
	}
	api := benchProc(b, env, "api")
	defer api.stop()
	waitReady(b, "http://"+addr, api)
	noTemp := filepath.Join(b.TempDir(), "no-tmpdir")
	if err := os.WriteFile(noTemp, nil, 0o400); err != nil {
		b.Fatal(err)
	}
	env["TMPDIR"] = noTemp
	worker := benchProc(b, env, "worker")
	defer worker.stop()

	jb := benchCreate(b, "http://"+addr, format)
	var j struct {
		Status     string    `json:"status"`
		StartedAt  time.Time `json:"started_at"`
		FinishedAt time.Time `json:"finished_at"`
		Result     *struct {
			Rows      int64 `json:"rows"`
			SizeBytes int64 `json:"size_bytes"`
		} `json:"result"`
		Error any `json:"error"`
	}
	for {
		r, err := benchGet("http://"+addr+"/api/v1/exports/"+jb, &j)
		if err != nil {
			b.Fatalf("poll: %v (%s)", err, r)
		}
		if j.Status == "succeeded" {
			break
		}
		if j.Status == "failed" || j.Status == "canceled" {
			b.Fatalf("%s export %s: %v\nworker:\n%s", name, j.Status, j.Error, worker.logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
	rss := worker.peakRSS(b)
	wall := j.FinishedAt.Sub(j.StartedAt)
	u.report(b, name, wall, j.Result.Rows, rss, j.Result.SizeBytes)
	if u.psql > 0 {
		b.ReportMetric(wall.Seconds()/u.psql.Seconds(), "x-psql")
		b.Logf("%s: %.2f× psql's %s", name, wall.Seconds()/u.psql.Seconds(), u.psql.Round(time.Millisecond))
	}
	if u.copied > 0 && j.Result.Rows != u.copied {
		b.Errorf("%s: exported %d rows, psql copied %d", name, j.Result.Rows, u.copied)
	}
}

func (u *usageBench) report(b *testing.B, name string, wall time.Duration, rows, rssKiB, size int64) {
	b.ReportMetric(wall.Seconds(), "wall-s")
	b.ReportMetric(float64(rows)/wall.Seconds(), "rows/s")
	if rssKiB > 0 {
		b.ReportMetric(float64(rssKiB)/1024, "peak-RSS-MiB")
	}
	b.Logf("%s: %d rows (of %d seeded), wall %s, %.0f rows/s, worker peak RSS %.1f MiB, file %.1f MiB",
		name, rows, u.rows, wall.Round(time.Millisecond), float64(rows)/wall.Seconds(), float64(rssKiB)/1024, float64(size)/(1<<20))
}

func benchCreate(b *testing.B, base, format string) string {
	body := `{"type":"usage_logs","format":"` + format + `"}`
	req, _ := http.NewRequest("POST", base+"/api/v1/exports", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var j struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&j); err != nil || resp.StatusCode != 202 {
		b.Fatalf("create: %d %v", resp.StatusCode, err)
	}
	return j.ID
}

type benchP struct {
	cmd *exec.Cmd
	out *os.File
}

func benchProc(b *testing.B, env map[string]string, role string) *benchP {
	b.Helper()
	f, err := os.CreateTemp(b.TempDir(), role+"-*.log")
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(binary, role)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	return &benchP{cmd: cmd, out: f}
}

func (p *benchP) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
	p.out.Close()
}

func (p *benchP) logs() string {
	b, _ := os.ReadFile(p.out.Name())
	return string(b)
}

// peakRSS is the process's VmHWM in KiB.
func (p *benchP) peakRSS(b *testing.B) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb
		}
	}
	b.Fatal("no VmHWM in /proc/<pid>/status")
	return 0
}

func benchAddr(b *testing.B) string {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitReady waits for the api at base; procs' logs are shown if it never is.
func waitReady(b *testing.B, base string, procs ...*benchP) {
	b.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, body)
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	var logs strings.Builder
	for _, p := range procs {
		logs.WriteString(p.logs())
	}
	b.Fatalf("api at %s not ready after 30s: %s\n%s", base, last, logs.String())
}

func benchGet(url string, v any) (string, error) {
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != 200 {
		return string(body), fmt.Errorf("status %d", resp.StatusCode)
	}
	return string(body), json.Unmarshal(body, v)
}
