package store

import (
	"context"
	"testing"

	"github.com/hubexport/hubexport/internal/export"
)

func TestActiveJobs(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ctx := context.Background()
	var ids []string
	for i := range 4 {
		j, _, err := s.CreateJob(ctx, newJob(int64(100+i), ""), 10)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	if _, err := s.BeginAttempt(ctx, ids[0], "tok"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CancelJob(ctx, ids[1], &export.JobError{Code: "canceled", Message: "test"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.ActiveJobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"probe_logs/queued": 2, "probe_logs/running": 1}
	if len(got) != len(want) {
		t.Fatalf("counts %+v, want %v", got, want)
	}
	for _, c := range got {
		if want[c.Type+"/"+c.Status] != c.Jobs {
			t.Fatalf("counts %+v, want %v", got, want)
		}
	}
}
