package jobs

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hubexport/hubexport/internal/export"
	"github.com/hubexport/hubexport/internal/metrics"
)

// Each way a job ends shows up once in the scrape, under its final status.
func TestRunnerReportsEndedJobs(t *testing.T) {
	t.Parallel()
	f := setup(t)
	m := metrics.New(metrics.Options{Types: []string{"probe_logs"}})
	f.runner.Metrics = m
	ctx := context.Background()

	if err := f.runner.Run(ctx, task(f.newJob(t, `{}`).ID), lines(3, 0)); err != nil {
		t.Fatal(err)
	}
	bad := func(context.Context, *export.Job, io.Writer, *Progress) (int64, error) {
		return 0, export.Invalid("params.x", "is wrong")
	}
	_ = f.runner.Run(ctx, task(f.newJob(t, `{}`).ID), bad)

	j := f.newJob(t, `{}`)
	done := make(chan error, 1)
	go func() { done <- f.runner.Run(ctx, task(j.ID), lines(1000, 5*time.Millisecond)) }()
	time.Sleep(100 * time.Millisecond)
	if _, err := f.store.CancelJob(ctx, j.ID, &export.JobError{Code: "canceled", Message: "test"}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	for _, l := range []string{
		`hubexport_jobs_finished_total{status="succeeded",type="probe_logs"} 1`,
		`hubexport_jobs_finished_total{status="failed",type="probe_logs"} 1`,
		`hubexport_jobs_finished_total{status="canceled",type="probe_logs"} 1`,
		`hubexport_exported_rows_total{type="probe_logs"} 3`,
		`hubexport_exported_bytes_total{type="probe_logs"} 15`,
		`hubexport_job_duration_seconds_count{status="succeeded",type="probe_logs"} 1`,
	} {
		if !strings.Contains(w.Body.String(), "\n"+l+"\n") {
			t.Errorf("no line %q in\n%s", l, w.Body)
		}
	}
}
