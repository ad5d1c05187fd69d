package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hubexport/hubexport/internal/export"
)

// Two exports of one feed read the same mark: the first to succeed moves
// it; the second's success is refused (its job still running, to run
// again) and the mark is the first's. A success that is not the attempt's
// own moves nothing.
func TestFeedMarkMovesOnlyWithSuccess(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ctx := context.Background()
	begin := func() *export.Job {
		t.Helper()
		j, _, err := s.CreateJob(ctx, newJob(7, ""), 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.BeginAttempt(ctx, j.ID, "tok-"+j.ID); err != nil {
			t.Fatal(err)
		}
		return j
	}
	at := time.Date(2026, 1, 29, 10, 0, 0, 123456000, time.UTC)
	first, second := begin(), begin()
	from, err := s.FeedMark(ctx, 7, "warehouse")
	if err != nil || from != nil {
		t.Fatalf("a new feed's mark: %+v %v", from, err)
	}
	advance := func(id int64) *export.FeedAdvance {
		return &export.FeedAdvance{Owner: 7, Name: "warehouse", From: from, To: &export.FeedMark{CreatedAt: at, ID: id}, CutOff: at.Add(time.Minute)}
	}
	// Not the attempt's own: nothing moves.
	if err := s.Succeed(ctx, first.ID, "tok-other", "k1", export.Result{Feed: advance(10)}); !errors.Is(err, export.ErrSuperseded) {
		t.Fatalf("success of another attempt: %v", err)
	}
	if m, _ := s.FeedMark(ctx, 7, "warehouse"); m != nil {
		t.Fatalf("mark moved by a refused success: %+v", m)
	}
	if err := s.Succeed(ctx, first.ID, "tok-"+first.ID, "k1", export.Result{Feed: advance(10)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Succeed(ctx, second.ID, "tok-"+second.ID, "k2", export.Result{Feed: advance(11)}); !errors.Is(err, export.ErrFeedMoved) {
		t.Fatalf("second success from the same mark: %v", err)
	}
	if j, _ := s.Job(ctx, second.ID); j.Status != export.StatusRunning {
		t.Fatalf("refused job reads %s", j.Status)
	}
	m, err := s.FeedMark(ctx, 7, "warehouse")
	if err != nil || m == nil || !m.CreatedAt.Equal(at) || m.ID != 10 {
		t.Fatalf("mark %+v %v, want the first run's", m, err)
	}
	// Another owner's feed of the same name is another feed.
	if m, _ := s.FeedMark(ctx, 8, "warehouse"); m != nil {
		t.Fatalf("user 8 sees user 7's mark %+v", m)
	}
}
