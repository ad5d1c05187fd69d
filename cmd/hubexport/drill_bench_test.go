package main

import (
	"encoding/json"
	"os"
	"strconv"
	"testing"
	"time"
)

// BenchmarkBackupVerify measures one restore drill of a seeded hub:
// `hubexport seed --rows N` into a scratch database, one database_backup,
// then backup_verify jobs of it on the same worker. It reports the drill's
// wall time (started_at to finished_at: scratch database, fetch, list,
// pg_restore, counting, drop) and pg_restore's share.
//
//	DRILL_BENCH_ROWS=1000000 go test ./cmd/hubexport -run '^$' \
//	    -bench BackupVerify -benchtime 1x -timeout 1h
func BenchmarkBackupVerify(b *testing.B) {
	n, err := strconv.Atoi(envOr("DRILL_BENCH_ROWS", "1000000"))
	if err != nil {
		b.Fatalf("DRILL_BENCH_ROWS: %v", err)
	}
	u := newBackupBench(b, n)
	addr := benchAddr(b)
	dir, err := os.MkdirTemp("", "hubexport-drill-bench-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	env := map[string]string{
		"DATABASE_URL": u.dsn, "REDIS_URL": u.redis.URL, "ADMIN_TOKEN": adminToken,
		"HTTP_ADDR": addr, "PUBLIC_URL": "http://" + addr, "STORAGE_URL": "file://" + dir,
		"LOG_LEVEL": "warn", "WORKER_CONCURRENCY": "1",
	}
	api := benchProc(b, env, "api")
	defer api.stop()
	waitReady(b, "http://"+addr, api)
	worker := benchProc(b, env, "worker")
	defer worker.stop()

	type job struct {
		Status     string    `json:"status"`
		StartedAt  time.Time `json:"started_at"`
		FinishedAt time.Time `json:"finished_at"`
		Result     *struct {
			SizeBytes int64          `json:"size_bytes"`
			Details   map[string]any `json:"details"`
		} `json:"result"`
		Error any `json:"error"`
	}
	wait := func(id string) job {
		var j job
		for {
			if r, err := benchGet("http://"+addr+"/api/v1/exports/"+id, &j); err != nil {
				b.Fatalf("poll: %v (%s)", err, r)
			}
			switch j.Status {
			case "succeeded":
				return j
			case "failed", "canceled":
				b.Fatalf("job %s %s: %v\nworker:\n%s", id, j.Status, j.Error, worker.logs())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	backupID := benchCreateBody(b, "http://"+addr, `{"type":"database_backup"}`)
	bk := wait(backupID)
	b.Logf("backup: %s, dump %.1f MiB", bk.FinishedAt.Sub(bk.StartedAt).Round(time.Millisecond), float64(bk.Result.SizeBytes)/(1<<20))
	body, _ := json.Marshal(map[string]any{"type": "backup_verify", "params": map[string]any{"backup_job_id": backupID}})
	b.ResetTimer()
	for range b.N {
		d := wait(benchCreateBody(b, "http://"+addr, string(body)))
		wall := d.FinishedAt.Sub(d.StartedAt)
		restore, _ := d.Result.Details["restore_duration_ms"].(float64)
		rows, _ := d.Result.Details["expected_rows"].(float64)
		b.ReportMetric(wall.Seconds(), "wall-s")
		b.ReportMetric(restore/1000, "restore-s")
		b.Logf("drill: database %.1f MiB, %d rows compared, wall %s, pg_restore %.1fs, passed %v",
			float64(u.dbSize)/(1<<20), int64(rows), wall.Round(time.Millisecond), restore/1000, d.Result.Details["passed"])
	}
}
