package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// After one probe-log export, /metrics (no token) counts it with its rows
// and bytes, and carries the active-jobs gauge, Asynq's queue metrics and
// the Go runtime's.
func TestMetricsAfterAnExport(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	probeFixture(s)
	s.start("serve")

	j := s.create(adminToken, map[string]any{"type": "probe_logs"})
	j = s.wait(adminToken, j.ID, 30*time.Second)
	if j.Status != "succeeded" {
		t.Fatalf("job %s: %+v", j.Status, j.Error)
	}

	r := s.do("GET", "/metrics", "", nil)
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: %d %q", r.status, r.header.Get("Content-Type"))
	}
	body := "\n" + string(r.body)
	for _, l := range []string{
		`hubexport_jobs_finished_total{status="succeeded",type="probe_logs"} 1`,
		`hubexport_jobs_finished_total{status="failed",type="probe_logs"} 0`,
		fmt.Sprintf(`hubexport_exported_rows_total{type="probe_logs"} %d`, j.Result.Rows),
		fmt.Sprintf(`hubexport_exported_bytes_total{type="probe_logs"} %d`, j.Result.SizeBytes),
		`hubexport_job_duration_seconds_count{status="succeeded",type="probe_logs"} 1`,
		`hubexport_jobs_active{status="queued",type="probe_logs"} 0`,
		`hubexport_jobs_active{status="running",type="usage_logs"} 0`,
		`hubexport_exported_rows_total{type="usage_logs"} 0`,
	} {
		if !strings.Contains(body, "\n"+l+"\n") {
			t.Errorf("no line %q", l)
		}
	}
	for _, name := range []string{
		"asynq_tasks_processed_total{", "asynq_queue_size{", "go_goroutines ", "process_resident_memory_bytes ",
		`hubexport_lock_waits_total{lock="backup"} 0`, `hubexport_webhook_deliveries_total{outcome="failed"} 0`,
	} {
		if !strings.Contains(body, "\n"+name) {
			t.Errorf("no %s", name)
		}
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", r.body)
	}
}

// A worker-only process serves its own metrics on METRICS_ADDR: the job
// counters live where the jobs run.
func TestWorkerMetricsListener(t *testing.T) {
	t.Parallel()
	metricsAddr := freeAddr(t)
	s := newStack(t, withEnv("METRICS_ADDR", metricsAddr))
	probeFixture(s)
	s.start("api")
	s.start("worker")
	j := s.create(adminToken, map[string]any{"type": "probe_logs"})
	if j = s.wait(adminToken, j.ID, 30*time.Second); j.Status != "succeeded" {
		t.Fatalf("job %s: %+v", j.Status, j.Error)
	}
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	want := `hubexport_jobs_finished_total{status="succeeded",type="probe_logs"} 1`
	if resp.StatusCode != 200 || !strings.Contains(string(b), "\n"+want+"\n") {
		t.Fatalf("worker /metrics: %d, no %q in\n%s", resp.StatusCode, want, b)
	}
}
