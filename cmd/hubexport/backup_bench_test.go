package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hubexport/hubexport/internal/testenv"
)

// BenchmarkDatabaseBackup measures whole database_backup jobs of a seeded hub against plain
// `pg_dump -Fc -f FILE` of the same database: `hubexport seed --rows N` into a scratch
// database, then `hubexport api` and a fresh `hubexport worker` process per case, one backup
// each. It reports the wall time (plain pg_dump: the process's run; a backup: the job's
// started_at to finished_at, which covers the lock, the dump streamed into storage with its
// SHA-256, and the read-back check with pg_restore --list), the ratio to plain pg_dump, the
// worker's peak RSS (VmHWM from /proc) and the dump's size.
//
// It is a benchmark, not a test: run it alone, once per size. About 1 GiB of database
// (pg_database_size) takes BACKUP_BENCH_ROWS=440000:
//
//	BACKUP_BENCH_ROWS=440000 go test ./cmd/hubexport -run '^$' \
//	    -bench DatabaseBackup -benchtime 1x -timeout 3h
//
// BACKUP_BENCH_CASES (default "pg_dump,local,s3") picks cases; "s3" is versitygw; "local-age"
// and "s3-age" are the same backups encrypted with age (BACKUP_AGE_RECIPIENTS set to a fresh
// X25519 recipient). A case named twice runs twice, so plain and encrypted runs can be
// interleaved and their medians compared:
//
//	BACKUP_BENCH_ROWS=20000,80000,200000 \
//	BACKUP_BENCH_CASES=pg_dump,local,local-age,pg_dump,local,local-age,pg_dump,local,local-age \
//	    go test ./cmd/hubexport -run '^$' -bench DatabaseBackup -benchtime 1x -timeout 3h
func BenchmarkDatabaseBackup(b *testing.B) {
	sizes := strings.Split(envOr("BACKUP_BENCH_ROWS", "440000"), ",")
	cases := strings.Split(envOr("BACKUP_BENCH_CASES", "pg_dump,local,s3"), ",")
	for _, size := range sizes {
		n, err := strconv.Atoi(strings.TrimSpace(size))
		if err != nil {
			b.Fatalf("BACKUP_BENCH_ROWS: %q is not a number", size)
		}
		b.Run("rows="+strconv.Itoa(n), func(b *testing.B) {
			bench := newBackupBench(b, n)
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

type backupBench struct {
	dsn    string
	rows   int
	dbSize int64
	plain  time.Duration // plain pg_dump's wall time, once it ran
	redis  *testenv.Redis
	s3     *testenv.S3
}

func newBackupBench(b *testing.B, rows int) *backupBench {
	b.Helper()
	if binary == "" {
		b.Skip("needs the hubexport binary (not built under -short)")
	}
	u := &backupBench{dsn: testenv.Postgres(b), rows: rows, redis: testenv.NewRedis(b), s3: testenv.NewS3(b)}
	start := time.Now()
	cmd := exec.Command(binary, "seed", "--rows", strconv.Itoa(rows), "--seed", "1", "--now", "2026-01-29T12:00:00Z")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "DATABASE_URL=" + u.dsn, "REDIS_URL=" + u.redis.URL, "LOG_LEVEL=warn"}
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("hubexport seed: %v\n%s", err, out)
	} else {
		b.Logf("%s(%s)", out, time.Since(start).Round(time.Second))
	}
	// hubexport's own schema exists before any case runs, so every case dumps the same database.
	mig := exec.Command(binary, "migrate")
	mig.Env = cmd.Env
	if out, err := mig.CombinedOutput(); err != nil {
		b.Fatalf("hubexport migrate: %v\n%s", err, out)
	}
	pool, err := pgxpool.New(context.Background(), u.dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(context.Background(), "VACUUM ANALYZE"); err != nil {
		b.Fatal(err)
	}
	if err := pool.QueryRow(context.Background(), "SELECT pg_database_size(current_database())").Scan(&u.dbSize); err != nil {
		b.Fatal(err)
	}
	b.Logf("database: %d message_request rows, pg_database_size %.1f MiB", rows, float64(u.dbSize)/(1<<20))
	return u
}

func (u *backupBench) run(b *testing.B, c string) {
	switch c {
	case "pg_dump":
		file := filepath.Join(b.TempDir(), "plain.dump")
		start := time.Now()
		out, err := exec.Command("pg_dump", "-Fc", "-f", file, u.dsn).CombinedOutput()
		wall := time.Since(start)
		if err != nil {
			b.Fatalf("pg_dump: %v\n%s", err, out)
		}
		fi, err := os.Stat(file)
		if err != nil {
			b.Fatal(err)
		}
		u.plain = wall
		u.report(b, c, wall, 0, fi.Size())
	case "local", "s3", "local-age", "s3-age":
		u.backup(b, c)
	default:
		b.Fatalf("unknown case %q", c)
	}
}

// backup runs one database_backup on a fresh worker process and reports it.
func (u *backupBench) backup(b *testing.B, where string) {
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
	if strings.HasSuffix(where, "-age") {
		id, err := age.GenerateX25519Identity()
		if err != nil {
			b.Fatal(err)
		}
		env["BACKUP_AGE_RECIPIENTS"] = id.Recipient().String()
	}
	if strings.HasPrefix(where, "s3") {
		env["STORAGE_URL"] = "s3://" + u.s3.Bucket + "/bench"
		env["S3_ENDPOINT"], env["S3_PUBLIC_ENDPOINT"] = u.s3.Endpoint, u.s3.Endpoint
		env["S3_REGION"], env["S3_ACCESS_KEY_ID"], env["S3_SECRET_ACCESS_KEY"] = u.s3.Region, u.s3.AccessKey, u.s3.SecretKey
		env["S3_FORCE_PATH_STYLE"] = "true"
	}
	api := benchProc(b, env, "api")
	defer api.stop()
	waitReady(b, "http://"+addr, api)
	worker := benchProc(b, env, "worker")
	defer worker.stop()

	id := benchCreateBody(b, "http://"+addr, `{"type":"database_backup"}`)
	var j struct {
		Status     string    `json:"status"`
		StartedAt  time.Time `json:"started_at"`
		FinishedAt time.Time `json:"finished_at"`
		Result     *struct {
			SizeBytes int64          `json:"size_bytes"`
			Details   map[string]any `json:"details"`
		} `json:"result"`
		Error any `json:"error"`
	}
	for {
		r, err := benchGet("http://"+addr+"/api/v1/exports/"+id, &j)
		if err != nil {
			b.Fatalf("poll: %v (%s)", err, r)
		}
		if j.Status == "succeeded" {
			break
		}
		if j.Status == "failed" || j.Status == "canceled" {
			b.Fatalf("%s backup %s: %v\nworker:\n%s", where, j.Status, j.Error, worker.logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
	rss := worker.peakRSS(b)
	u.report(b, where, j.FinishedAt.Sub(j.StartedAt), rss, j.Result.SizeBytes)
	b.Logf("%s: details %v", where, j.Result.Details)
}

func (u *backupBench) report(b *testing.B, name string, wall time.Duration, rssKiB, size int64) {
	b.ReportMetric(wall.Seconds(), "wall-s")
	ratio := ""
	if u.plain > 0 && name != "pg_dump" {
		b.ReportMetric(wall.Seconds()/u.plain.Seconds(), "x-pg_dump")
		ratio = fmt.Sprintf(" (%.3f× plain pg_dump's %s)", wall.Seconds()/u.plain.Seconds(), u.plain.Round(time.Millisecond))
	}
	if rssKiB > 0 {
		b.ReportMetric(float64(rssKiB)/1024, "peak-RSS-MiB")
	}
	b.Logf("%s: database %.1f MiB, wall %s%s, worker peak RSS %.1f MiB, dump %.1f MiB",
		name, float64(u.dbSize)/(1<<20), wall.Round(time.Millisecond), ratio, float64(rssKiB)/1024, float64(size)/(1<<20))
}

func benchCreateBody(b *testing.B, base, body string) string {
	b.Helper()
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
