package metrics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	return w.Body.String()
}

func wantLines(t *testing.T, body string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(body, "\n"+l+"\n") {
			t.Errorf("no line %q in\n%s", l, body)
		}
	}
}

func TestMetricsText(t *testing.T) {
	t.Parallel()
	m := New(Options{
		Types: []string{"probe_logs", "usage_logs"},
		ActiveJobs: func(context.Context) ([]JobCount, error) {
			return []JobCount{{Type: "usage_logs", Status: "running", Jobs: 2}}, nil
		},
	})
	m.JobEnded("probe_logs", "succeeded", 1500*time.Millisecond, 42, 1234)
	m.JobEnded("probe_logs", "failed", time.Second, 0, 0)
	m.JobEnded("usage_logs", "succeeded", 3*time.Second, 10, 100)
	m.JobEnded("usage_logs", "succeeded", 3*time.Second, 5, 50)
	m.LockWaited(LockBackup, 2*time.Second)
	m.WebhookDelivered(WebhookSucceeded)
	m.WebhookDelivered(WebhookSucceeded)
	m.WebhookDelivered(WebhookFailed)
	at := time.Unix(1769682600, 0)
	m.BackupSucceeded("nightly", at)
	m.BackupSucceeded("nightly", at.Add(-time.Hour)) // late report of an older one

	body := scrape(t, m)
	wantLines(t, body,
		`hubexport_jobs_finished_total{status="succeeded",type="probe_logs"} 1`,
		`hubexport_jobs_finished_total{status="failed",type="probe_logs"} 1`,
		`hubexport_jobs_finished_total{status="canceled",type="probe_logs"} 0`,
		`hubexport_jobs_finished_total{status="succeeded",type="usage_logs"} 2`,
		`hubexport_exported_rows_total{type="probe_logs"} 42`,
		`hubexport_exported_bytes_total{type="probe_logs"} 1234`,
		`hubexport_exported_rows_total{type="usage_logs"} 15`,
		`hubexport_exported_bytes_total{type="usage_logs"} 150`,
		`hubexport_job_duration_seconds_bucket{status="succeeded",type="probe_logs",le="1"} 0`,
		`hubexport_job_duration_seconds_bucket{status="succeeded",type="probe_logs",le="2.5"} 1`,
		`hubexport_job_duration_seconds_count{status="succeeded",type="usage_logs"} 2`,
		`hubexport_jobs_active{status="running",type="usage_logs"} 2`,
		`hubexport_jobs_active{status="queued",type="probe_logs"} 0`,
		`hubexport_lock_waits_total{lock="backup"} 1`,
		`hubexport_lock_wait_seconds_total{lock="backup"} 2`,
		`hubexport_webhook_deliveries_total{outcome="succeeded"} 2`,
		`hubexport_webhook_deliveries_total{outcome="failed"} 1`,
		`hubexport_last_successful_backup_timestamp_seconds{schedule="nightly"} 1.7696826e+09`,
	)
	for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_cpu_seconds_total"} {
		if !strings.Contains(body, "\n"+name+" ") {
			t.Errorf("no %s in the scrape", name)
		}
	}
}

// A failing PostgreSQL leaves the active-jobs gauge out; the rest is served.
func TestActiveJobsFailureKeepsTheRest(t *testing.T) {
	t.Parallel()
	m := New(Options{
		Types:      []string{"probe_logs"},
		ActiveJobs: func(context.Context) ([]JobCount, error) { return nil, errors.New("connection refused") },
		Log:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	m.JobEnded("probe_logs", "succeeded", time.Second, 1, 1)
	body := scrape(t, m)
	wantLines(t, body, `hubexport_jobs_finished_total{status="succeeded",type="probe_logs"} 1`)
	if strings.Contains(body, "hubexport_jobs_active{") {
		t.Errorf("active jobs reported despite the failure:\n%s", body)
	}
}

// A process without METRICS_ADDR passes a nil *Metrics everywhere: every
// recording method, including ones added later, must be a no-op on nil
// rather than a panic in a worker, and nothing may land in the process-wide
// default registry instead.
func TestNilMetricsRecordNothing(t *testing.T) {
	var m *Metrics
	v := reflect.ValueOf(m)
	called := 0
	for i := range v.NumMethod() {
		method := v.Type().Method(i)
		if method.Name == "Register" || method.Name == "Handler" {
			continue // need a registry by design; serve builds one before calling them
		}
		args := make([]reflect.Value, method.Type.NumIn()-1)
		for j := range args {
			args[j] = reflect.New(method.Type.In(j + 1)).Elem()
		}
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("(*Metrics)(nil).%s panicked: %v", method.Name, r)
				}
			}()
			v.Method(i).Call(args)
		}()
		called++
	}
	if called < 5 {
		t.Fatalf("called %d recording methods, want at least 5 (JobEnded, LockWaited, WebhookDelivered, BackupSucceeded, BackupVerified)", called)
	}
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if strings.HasPrefix(f.GetName(), namespace+"_") {
			t.Errorf("the default registry holds %s", f.GetName())
		}
	}
}
